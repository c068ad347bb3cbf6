//! Prometheus text exposition (format 0.0.4) of `serve`: the current findings by rule and
//! severity, the readiness verdict, rule timings and errors, ClickHouse reachability and
//! webhook deliveries. Every family is documented in `analyzer/METRICS.md`.
//!
//! Conventions as in the collector (`collector/src/metrics.rs`): counters end in `_total`,
//! every family has `# HELP` and `# TYPE`, label values escape `\`, `"` and newline.
//! Labels carry rule ids, severities, verdicts and webhook indexes only — never client names
//! or URLs (bounded cardinality, no secrets).

use super::{RunStats, Snapshot};
use crate::finding::{RuleId, Severity};
use crate::readiness::Verdict;
use std::fmt::Write as _;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Writer {
    out: String,
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        if value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15 {
            let _ = writeln!(self.out, " {}", value as i64);
        } else {
            let _ = writeln!(self.out, " {value}");
        }
    }
}

const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// Renders the exposition from the latest snapshot, the run stats and the webhook counters
/// `(index, sent, errors)`.
pub fn render(
    snap: Option<&Snapshot>,
    stats: &RunStats,
    webhooks: &[(String, u64, u64)],
) -> String {
    let mut w = Writer { out: String::new() };
    if let Some(s) = snap {
        let a = &s.analysis;
        w.family(
            "mcptap_analyzer_findings",
            "gauge",
            "Findings of the latest background analysis, by rule and severity (every pair listed, 0 included).",
        );
        for r in RuleId::ALL {
            for sev in SEVERITIES {
                let n = a
                    .findings
                    .iter()
                    .filter(|f| f.rule == r && f.severity == sev)
                    .count();
                w.sample(
                    "mcptap_analyzer_findings",
                    &[("rule", r.as_str()), ("severity", sev.as_str())],
                    n as f64,
                );
            }
        }
        w.family(
            "mcptap_analyzer_finding_requests",
            "gauge",
            "Requests (spans) behind the findings of the latest analysis, by rule.",
        );
        for r in RuleId::ALL {
            let n: u64 = a
                .findings
                .iter()
                .filter(|f| f.rule == r)
                .map(|f| f.count)
                .sum();
            w.sample(
                "mcptap_analyzer_finding_requests",
                &[("rule", r.as_str())],
                n as f64,
            );
        }
        if let Some(rd) = &a.readiness {
            w.family(
                "mcptap_analyzer_readiness",
                "gauge",
                "Cutover readiness verdict of the latest analysis: 1 for the current verdict, 0 for the others.",
            );
            for (v, name) in [
                (Verdict::Ready, "ready"),
                (Verdict::NotReady, "not_ready"),
                (Verdict::NoData, "no_data"),
            ] {
                w.sample(
                    "mcptap_analyzer_readiness",
                    &[("verdict", name)],
                    if rd.verdict == v { 1.0 } else { 0.0 },
                );
            }
            w.family(
                "mcptap_analyzer_session_dependent_ratio",
                "gauge",
                "Share (0..1) of requests in the window that still depend on MCP sessions.",
            );
            w.sample(
                "mcptap_analyzer_session_dependent_ratio",
                &[],
                rd.session_dependent_share,
            );
            w.family(
                "mcptap_analyzer_requests",
                "gauge",
                "Spans in the analysed window.",
            );
            w.sample("mcptap_analyzer_requests", &[], rd.requests as f64);
        }
        w.family(
            "mcptap_analyzer_window_end_timestamp_seconds",
            "gauge",
            "End of the window of the latest analysis, Unix seconds.",
        );
        w.sample(
            "mcptap_analyzer_window_end_timestamp_seconds",
            &[],
            a.range.until_ns as f64 / 1e9,
        );
    }
    w.family(
        "mcptap_analyzer_rule_duration_seconds",
        "gauge",
        "Wall time of each rule in the latest background analysis.",
    );
    for (r, d) in &stats.rule_duration_s {
        w.sample(
            "mcptap_analyzer_rule_duration_seconds",
            &[("rule", r.as_str())],
            *d,
        );
    }
    w.family(
        "mcptap_analyzer_rule_errors_total",
        "counter",
        "Rule runs that failed (query error or unexpected rows), background and on demand.",
    );
    for r in RuleId::ALL {
        let n = stats.rule_errors_total.get(&r).copied().unwrap_or(0);
        w.sample(
            "mcptap_analyzer_rule_errors_total",
            &[("rule", r.as_str())],
            n as f64,
        );
    }
    w.family(
        "mcptap_analyzer_readiness_errors_total",
        "counter",
        "Readiness queries that failed.",
    );
    w.sample(
        "mcptap_analyzer_readiness_errors_total",
        &[],
        stats.readiness_errors_total as f64,
    );
    w.family(
        "mcptap_analyzer_runs_total",
        "counter",
        "Background analyses attempted.",
    );
    w.sample("mcptap_analyzer_runs_total", &[], stats.runs_total as f64);
    w.family(
        "mcptap_analyzer_on_demand_analyses_total",
        "counter",
        "Analyses run for API requests with an explicit range.",
    );
    w.sample(
        "mcptap_analyzer_on_demand_analyses_total",
        &[],
        stats.on_demand_total as f64,
    );
    w.family(
        "mcptap_analyzer_last_run_timestamp_seconds",
        "gauge",
        "When the latest background analysis ended, Unix seconds (0 before the first).",
    );
    w.sample(
        "mcptap_analyzer_last_run_timestamp_seconds",
        &[],
        stats.last_run_ns.map_or(0.0, |n| n as f64 / 1e9),
    );
    w.family(
        "mcptap_analyzer_clickhouse_up",
        "gauge",
        "1 when the latest background run reached ClickHouse, else 0.",
    );
    w.sample(
        "mcptap_analyzer_clickhouse_up",
        &[],
        if stats.clickhouse_up { 1.0 } else { 0.0 },
    );
    if !webhooks.is_empty() {
        w.family(
            "mcptap_analyzer_webhook_notifications_total",
            "counter",
            "Webhook POSTs answered 2xx, by webhook index (order of the flags).",
        );
        for (i, sent, _) in webhooks {
            w.sample(
                "mcptap_analyzer_webhook_notifications_total",
                &[("webhook", i)],
                *sent as f64,
            );
        }
        w.family(
            "mcptap_analyzer_webhook_errors_total",
            "counter",
            "Webhook POSTs that failed (transport error or non-2xx), by webhook index.",
        );
        for (i, _, err) in webhooks {
            w.sample(
                "mcptap_analyzer_webhook_errors_total",
                &[("webhook", i)],
                *err as f64,
            );
        }
    }
    w.out
}
