//! Rendering an [`Analysis`]: the JSON report (stable schema, `analyzer/REPORT_SCHEMA.md`) and
//! the terminal table; and the CI exit code.

use crate::engine::Analysis;
use crate::finding::{RuleId, Severity};
use crate::readiness::Verdict;
use crate::timeutil::format_rfc3339_ns;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Version of the JSON report schema. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Exit code: no finding at or above `--fail-on` and no error.
pub const EXIT_OK: i32 = 0;
/// Exit code: a rule or the readiness query failed, or the arguments/connection did.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: at least one finding at or above `--fail-on`.
pub const EXIT_FINDINGS: i32 = 4;

/// Where the spans came from (JSON `source`).
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Whether mcptap's MATERIALIZED columns were used.
    pub materialized_columns: bool,
}

/// The JSON report document.
#[derive(Debug, Clone, Serialize)]
pub struct JsonReport<'a> {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `mcptap-analyzer <version>`.
    pub generator: String,
    /// When the report was made (RFC 3339).
    pub generated_at: String,
    /// Spans source.
    pub source: SourceInfo,
    /// `{since, until}` RFC 3339, plus the ns values.
    pub range: serde_json::Value,
    /// Counts by severity and by rule (every rule listed, 0 included).
    pub summary: serde_json::Value,
    /// Readiness verdict or null.
    pub readiness: &'a Option<crate::readiness::Readiness>,
    /// Findings, most severe first.
    pub findings: &'a [crate::finding::Finding],
    /// Per-rule run info.
    pub rules: &'a [crate::engine::RuleRun],
    /// Error texts (rules or readiness that failed).
    pub errors: Vec<String>,
}

fn summary(a: &Analysis) -> serde_json::Value {
    let mut by_sev: BTreeMap<&str, usize> = [("critical", 0), ("warning", 0), ("info", 0)]
        .into_iter()
        .collect();
    let mut by_rule: BTreeMap<&str, usize> = RuleId::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for f in &a.findings {
        *by_sev.entry(f.severity.as_str()).or_default() += 1;
        *by_rule.entry(f.rule.as_str()).or_default() += 1;
    }
    serde_json::json!({ "findings": a.findings.len(), "by_severity": by_sev, "by_rule": by_rule })
}

fn errors(a: &Analysis) -> Vec<String> {
    let mut e: Vec<String> = a
        .rules
        .iter()
        .filter_map(|r| r.error.as_ref().map(|x| format!("{}: {x}", r.rule)))
        .collect();
    if let Some(x) = &a.readiness_error {
        e.push(format!("readiness: {x}"));
    }
    e
}

/// Builds the JSON report.
pub fn to_json(a: &Analysis, source: SourceInfo, now_ns: i64) -> serde_json::Value {
    let doc = JsonReport {
        schema_version: SCHEMA_VERSION,
        generator: format!("mcptap-analyzer {}", env!("CARGO_PKG_VERSION")),
        generated_at: format_rfc3339_ns(now_ns),
        source,
        range: serde_json::json!({
            "since": format_rfc3339_ns(a.range.since_ns),
            "until": format_rfc3339_ns(a.range.until_ns),
            "since_ns": a.range.since_ns,
            "until_ns": a.range.until_ns,
        }),
        summary: summary(a),
        readiness: &a.readiness,
        findings: &a.findings,
        rules: &a.rules,
        errors: errors(a),
    };
    serde_json::to_value(doc).unwrap_or(serde_json::Value::Null)
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The readiness section of the terminal report.
fn readiness_table(o: &mut String, r: &crate::readiness::Readiness) {
    let v = match r.verdict {
        Verdict::Ready => "READY",
        Verdict::NotReady => "NOT READY",
        Verdict::NoData => "NO DATA",
    };
    let sticky = if r.sticky_sessions_removable {
        "sticky sessions can be removed"
    } else {
        "sticky sessions cannot be removed yet"
    };
    let _ = writeln!(o, "CUTOVER READINESS: {v} — {sticky}");
    let _ = writeln!(
        o,
        "  session-dependent requests: {} of {} ({:.1}%), legacy-era: {}, session 404s: {}, cross-instance handle failures: {}",
        r.session_dependent_requests,
        r.requests,
        r.session_dependent_share * 100.0,
        r.legacy_requests,
        r.session_404,
        r.cross_instance_handle_failures
    );
    for reason in &r.reasons {
        let _ = writeln!(o, "  - {reason}");
    }
    for adv in &r.advice {
        let _ = writeln!(o, "  * {adv}");
    }
    if !r.clients.is_empty() {
        let _ = writeln!(o, "  clients still on sessions:");
        for c in &r.clients {
            let _ = writeln!(
                o,
                "    {:<48} {:>6}/{:<6} ({:>5.1}%)  404s {:<4} instances {}",
                trunc(&c.client.label(), 48),
                c.session_dependent,
                c.requests,
                c.share * 100.0,
                c.session_404,
                c.instances.join(", ")
            );
        }
    }
    if !r.instances.is_empty() {
        let _ = writeln!(o, "  instances:");
        for i in &r.instances {
            let _ = writeln!(
                o,
                "    {:<48} {:>6}/{:<6} ({:>5.1}%) session-dependent, 404s {}",
                trunc(&i.instance, 48),
                i.session_dependent,
                i.requests,
                i.share * 100.0,
                i.session_404
            );
        }
    }
}

/// Renders the terminal report (plain text, fixed-width columns).
pub fn to_table(a: &Analysis, source: &SourceInfo) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "mcptap-analyzer report — {}.{} — {} .. {}",
        source.database,
        source.table,
        format_rfc3339_ns(a.range.since_ns),
        format_rfc3339_ns(a.range.until_ns)
    );
    let _ = writeln!(o);
    match &a.readiness {
        Some(r) => readiness_table(&mut o, r),
        None => {
            let _ = writeln!(
                o,
                "CUTOVER READINESS: unknown ({})",
                a.readiness_error.as_deref().unwrap_or("not computed")
            );
        }
    }
    let _ = writeln!(o);
    let n = |s: Severity| a.findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        o,
        "FINDINGS: {} ({} critical, {} warning, {} info)",
        a.findings.len(),
        n(Severity::Critical),
        n(Severity::Warning),
        n(Severity::Info)
    );
    if !a.findings.is_empty() {
        let _ = writeln!(
            o,
            "{:<9} {:<30} {:>6}  SUMMARY",
            "SEVERITY", "RULE", "COUNT"
        );
        for f in &a.findings {
            let _ = writeln!(
                o,
                "{:<9} {:<30} {:>6}  {}",
                f.severity.as_str(),
                f.rule.as_str(),
                f.count,
                f.summary
            );
            let _ = writeln!(
                o,
                "{:<48}seen {} .. {}; traces {}",
                "",
                f.first_seen,
                f.last_seen,
                f.sample_trace_ids
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "RULES:");
    for r in &a.rules {
        let status = match &r.error {
            Some(e) => format!("ERROR: {}", trunc(e, 200)),
            None => format!("{} finding(s)", r.findings),
        };
        let _ = writeln!(
            o,
            "  {:<30} {:>9.1} ms  {status}",
            r.rule.as_str(),
            r.duration_ms
        );
    }
    o
}

/// The process exit code: [`EXIT_ERROR`] when something failed, else [`EXIT_FINDINGS`] when a
/// finding is at or above `fail_on` (when given), else [`EXIT_OK`].
pub fn exit_code(a: &Analysis, fail_on: Option<Severity>) -> i32 {
    if a.has_errors() {
        EXIT_ERROR
    } else if fail_on.is_some_and(|s| a.count_at_least(s) > 0) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}
