//! Prometheus text exposition (format 0.0.4) of `serve`: the current findings by rule and
//! severity, the readiness verdict, rule timings and errors, ClickHouse reachability and
//! webhook deliveries. Every family is documented in `analyzer/METRICS.md`.
//!
//! Rendered by the `prometheus-client` crate's Prometheus text encoder
//! (`encoding::prometheus_text`) over a [`Collector`] that reads the latest snapshot and the
//! run statistics at scrape time (no metric objects kept in sync beside them). Counters end in
//! `_total` (the encoder appends it to the family name), every family has `# HELP` and
//! `# TYPE`. Labels carry rule ids, severities, verdicts and webhook indexes only — never
//! client names or URLs (bounded cardinality, no secrets).

use super::{RunStats, Snapshot};
use crate::engine::Analysis;
use crate::finding::{RuleId, Severity};
use crate::readiness::{Readiness, Verdict};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// The content type of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A sample value: integers are written as integers, others as floats.
#[derive(Debug, Clone, Copy)]
enum Num {
    Int(u64),
    Float(f64),
}

/// One metric family as it is scraped: its samples with their label pairs.
#[derive(Debug)]
struct Family {
    /// Name; for counters without the `_total` the encoder appends.
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Vec<(&'static str, String)>, Num)>,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            kind: MetricType::Gauge,
            samples: Vec::new(),
        }
    }

    /// A counter named `<name>_total`.
    fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            kind: MetricType::Counter,
            ..Self::gauge(name, help)
        }
    }

    fn with(mut self, labels: &[(&'static str, &str)], v: Num) -> Self {
        let labels = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        self.samples.push((labels, v));
        self
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, v) in &self.samples {
            let e = metric.encode_family(labels)?;
            match (self.kind, *v) {
                (MetricType::Counter, Num::Int(n)) => ConstCounter::new(n).encode(e)?,
                (MetricType::Counter, Num::Float(x)) => ConstCounter::new(x).encode(e)?,
                (_, Num::Int(n)) => {
                    ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)).encode(e)?
                }
                (_, Num::Float(x)) => ConstGauge::new(x).encode(e)?,
            }
        }
        Ok(())
    }
}

/// The families of one scrape, in exposition order.
#[derive(Debug)]
struct Exposition(Vec<Family>);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            f.encode(&mut encoder)?;
        }
        Ok(())
    }
}

const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

/// Findings by rule and severity, and the requests behind them.
fn finding_families(a: &Analysis) -> [Family; 2] {
    let mut findings = Family::gauge(
        "mcptap_analyzer_findings",
        "Findings of the latest background analysis, by rule and severity (every pair listed, 0 included).",
    );
    let mut requests = Family::gauge(
        "mcptap_analyzer_finding_requests",
        "Requests (spans) behind the findings of the latest analysis, by rule.",
    );
    for r in RuleId::ALL {
        for sev in SEVERITIES {
            let n = a
                .findings
                .iter()
                .filter(|f| f.rule == r && f.severity == sev)
                .count();
            findings = findings.with(
                &[("rule", r.as_str()), ("severity", sev.as_str())],
                Num::Int(n as u64),
            );
        }
    }
    for r in RuleId::ALL {
        let n: u64 = a
            .findings
            .iter()
            .filter(|f| f.rule == r)
            .map(|f| f.count)
            .sum();
        requests = requests.with(&[("rule", r.as_str())], Num::Int(n));
    }
    [findings, requests]
}

/// The readiness verdict, the session-dependent share and the request count.
fn readiness_families(rd: &Readiness) -> [Family; 3] {
    let mut verdict = Family::gauge(
        "mcptap_analyzer_readiness",
        "Cutover readiness verdict of the latest analysis: 1 for the current verdict, 0 for the others.",
    );
    for (v, name) in [
        (Verdict::Ready, "ready"),
        (Verdict::NotReady, "not_ready"),
        (Verdict::NoData, "no_data"),
    ] {
        verdict = verdict.with(&[("verdict", name)], Num::Int(u64::from(rd.verdict == v)));
    }
    [
        verdict,
        Family::gauge(
            "mcptap_analyzer_session_dependent_ratio",
            "Share (0..1) of requests in the window that still depend on MCP sessions.",
        )
        .with(&[], Num::Float(rd.session_dependent_share)),
        Family::gauge("mcptap_analyzer_requests", "Spans in the analysed window.")
            .with(&[], Num::Int(rd.requests)),
    ]
}

/// Rule timings and errors of the runs.
fn rule_families(stats: &RunStats) -> [Family; 2] {
    let mut duration = Family::gauge(
        "mcptap_analyzer_rule_duration_seconds",
        "Wall time of each rule in the latest background analysis.",
    );
    for (r, d) in &stats.rule_duration_s {
        duration = duration.with(&[("rule", r.as_str())], Num::Float(*d));
    }
    let mut errors = Family::counter(
        "mcptap_analyzer_rule_errors",
        "Rule runs that failed (query error or unexpected rows), background and on demand.",
    );
    for r in RuleId::ALL {
        let n = stats.rule_errors_total.get(&r).copied().unwrap_or(0);
        errors = errors.with(&[("rule", r.as_str())], Num::Int(n));
    }
    [duration, errors]
}

/// Run counters, the last run time and ClickHouse reachability.
fn run_families(stats: &RunStats) -> [Family; 5] {
    [
        Family::counter(
            "mcptap_analyzer_readiness_errors",
            "Readiness queries that failed.",
        )
        .with(&[], Num::Int(stats.readiness_errors_total)),
        Family::counter("mcptap_analyzer_runs", "Background analyses attempted.")
            .with(&[], Num::Int(stats.runs_total)),
        Family::counter(
            "mcptap_analyzer_on_demand_analyses",
            "Analyses run for API requests with an explicit range.",
        )
        .with(&[], Num::Int(stats.on_demand_total)),
        Family::gauge(
            "mcptap_analyzer_last_run_timestamp_seconds",
            "When the latest background analysis ended, Unix seconds (0 before the first).",
        )
        .with(&[], seconds(stats.last_run_ns.unwrap_or(0))),
        Family::gauge(
            "mcptap_analyzer_clickhouse_up",
            "1 when the latest background run reached ClickHouse, else 0.",
        )
        .with(&[], Num::Int(u64::from(stats.clickhouse_up))),
    ]
}

/// Webhook deliveries `(index, sent, errors)`.
fn webhook_families(webhooks: &[(String, u64, u64)]) -> [Family; 2] {
    let mut sent = Family::counter(
        "mcptap_analyzer_webhook_notifications",
        "Webhook POSTs answered 2xx, by webhook index (order of the flags).",
    );
    let mut errors = Family::counter(
        "mcptap_analyzer_webhook_errors",
        "Webhook POSTs that failed (transport error or non-2xx), by webhook index.",
    );
    for (i, ok, err) in webhooks {
        sent = sent.with(&[("webhook", i)], Num::Int(*ok));
        errors = errors.with(&[("webhook", i)], Num::Int(*err));
    }
    [sent, errors]
}

/// Unix ns as Unix seconds (an integer when whole).
fn seconds(ns: i64) -> Num {
    if ns % crate::timeutil::NS_PER_SEC == 0 {
        Num::Int(u64::try_from(ns / crate::timeutil::NS_PER_SEC).unwrap_or(0))
    } else {
        Num::Float(ns as f64 / 1e9)
    }
}

/// Renders the exposition from the latest snapshot, the run stats and the webhook counters
/// `(index, sent, errors)`. Families marked *after first run* in `analyzer/METRICS.md` are
/// left out without a snapshot, the webhook families without webhooks.
pub fn render(
    snap: Option<&Snapshot>,
    stats: &RunStats,
    webhooks: &[(String, u64, u64)],
) -> String {
    let mut families = Vec::new();
    if let Some(s) = snap {
        let a = &s.analysis;
        families.extend(finding_families(a));
        if let Some(rd) = &a.readiness {
            families.extend(readiness_families(rd));
        }
        families.push(
            Family::gauge(
                "mcptap_analyzer_window_end_timestamp_seconds",
                "End of the window of the latest analysis, Unix seconds.",
            )
            .with(&[], seconds(a.range.until_ns)),
        );
    }
    families.extend(rule_families(stats));
    families.extend(run_families(stats));
    if !webhooks.is_empty() {
        families.extend(webhook_families(webhooks));
    }
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(families)));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "metrics exposition failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Range;
    use crate::engine::Analysis;
    use crate::finding::{Finding, Subject};
    use crate::readiness::Readiness;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    /// The exposition written by the hand-made writer this module had before it used
    /// prometheus-client (commit e8fd74b), for the input of [`sample_input`].
    const BEFORE: &str = include_str!("metrics.before.prom");

    fn finding(rule: RuleId, severity: Severity, count: u64) -> Finding {
        Finding {
            rule,
            severity,
            summary: String::new(),
            subject: Subject::default(),
            count,
            counts: BTreeMap::new(),
            first_seen: String::new(),
            last_seen: String::new(),
            sample_trace_ids: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    /// A snapshot, run stats and webhook counters with every family present and values that
    /// are not all integers.
    fn sample_input() -> (Snapshot, RunStats, Vec<(String, u64, u64)>) {
        let readiness = Readiness {
            verdict: Verdict::NotReady,
            sticky_sessions_removable: false,
            reasons: Vec::new(),
            advice: Vec::new(),
            requests: 67,
            session_dependent_requests: 25,
            session_dependent_share: 0.373_134_328_358_208_9,
            legacy_requests: 30,
            session_404: 2,
            cross_instance_handle_failures: 1,
            clients: Vec::new(),
            instances: Vec::new(),
        };
        let analysis = Analysis {
            range: Range {
                since_ns: 1_763_704_200_000_000_000,
                until_ns: 1_763_704_800_500_000_000,
            },
            findings: vec![
                finding(RuleId::CrossInstanceHandleFailure, Severity::Critical, 1),
                finding(RuleId::SessionIdStillSent, Severity::Warning, 12),
                finding(RuleId::SessionIdStillSent, Severity::Info, 7),
            ],
            rules: Vec::new(),
            readiness: Some(readiness),
            readiness_error: None,
        };
        let snap = Snapshot {
            analysis,
            generated_ns: 1_763_704_801_250_000_000,
            series: Mutex::new(HashMap::new()),
        };
        let stats = RunStats {
            runs_total: 3,
            last_run_ns: Some(1_763_704_801_250_000_000),
            clickhouse_up: true,
            rule_duration_s: BTreeMap::from([
                (RuleId::SessionIdStillSent, 0.0125),
                (RuleId::Status4xxSpike, 0.5),
            ]),
            rule_errors_total: BTreeMap::from([(RuleId::Status4xxSpike, 2)]),
            readiness_errors_total: 1,
            on_demand_total: 4,
        };
        let hooks = vec![("0".to_string(), 5, 1), ("1".to_string(), 0, 2)];
        (snap, stats, hooks)
    }

    /// An exposition as `(line kind, text, value)`: `# HELP` and `# TYPE` lines whole,
    /// samples as `name{labels}` and their value (so `1` and `1.0` compare equal).
    fn parsed(text: &str) -> Vec<(char, String, f64)> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                if l.starts_with('#') {
                    ('#', l.to_string(), 0.0)
                } else {
                    let (k, v) = l.rsplit_once(' ').unwrap_or((l, "NaN"));
                    ('s', k.to_string(), v.parse().unwrap_or(f64::NAN))
                }
            })
            .collect()
    }

    #[test]
    fn exposition_matches_the_hand_written_one() {
        let (snap, stats, hooks) = sample_input();
        let now = render(Some(&snap), &stats, &hooks);
        if std::env::var_os("MCPTAP_BLESS_METRICS").is_some() {
            let p = concat!(env!("CARGO_MANIFEST_DIR"), "/src/serve/metrics.before.prom");
            std::fs::write(p, &now).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        // Byte for byte, and sample by sample for a readable failure.
        assert_eq!(parsed(&now), parsed(BEFORE), "{now}");
        assert_eq!(now, BEFORE);
        let before_first = render(None, &RunStats::default(), &[]);
        assert!(!before_first.contains("mcptap_analyzer_findings"));
        assert!(before_first.contains("mcptap_analyzer_clickhouse_up 0\n"));
    }

    /// Every family rendered is in `analyzer/METRICS.md`'s table and the other way round.
    #[test]
    fn metrics_md_lists_exactly_the_families() {
        let (snap, stats, hooks) = sample_input();
        let now = render(Some(&snap), &stats, &hooks);
        let rendered: std::collections::BTreeSet<&str> = now
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let doc = include_str!("../../METRICS.md");
        let documented: std::collections::BTreeSet<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        assert_eq!(rendered, documented);
        assert_eq!(rendered.len(), 15);
    }
}
