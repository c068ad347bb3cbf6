//! Runs the rules over a time range and gathers findings, per-rule timings and the readiness
//! verdict into an [`Analysis`]. Used by `report` now and meant to be reused by `serve`.

use crate::clickhouse::Db;
use crate::config::{Config, Range};
use crate::finding::{Finding, RuleId, Severity};
use crate::readiness::{self, Readiness};
use crate::rules;
use anyhow::Result;
use serde::Serialize;
use std::time::Instant;

/// What one rule run took and gave.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRun {
    /// The rule.
    pub rule: RuleId,
    /// Wall time of its queries and processing, ms.
    pub duration_ms: f64,
    /// Number of findings.
    pub findings: usize,
    /// The error text when the rule failed (its findings are then missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of analysing one range.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// The range analysed.
    pub range: Range,
    /// Findings, most severe first, then by rule order and count.
    pub findings: Vec<Finding>,
    /// One entry per rule run.
    pub rules: Vec<RuleRun>,
    /// The cutover readiness verdict (None when its query failed; see `readiness_error`).
    pub readiness: Option<Readiness>,
    /// Error of the readiness query.
    pub readiness_error: Option<String>,
}

impl Analysis {
    /// Whether any rule (or the readiness query) failed.
    pub fn has_errors(&self) -> bool {
        self.readiness_error.is_some() || self.rules.iter().any(|r| r.error.is_some())
    }

    /// Number of findings at or above `min`.
    pub fn count_at_least(&self, min: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity >= min).count()
    }
}

/// Runs one rule.
///
/// # Errors
/// A query failed or returned rows of an unexpected shape.
pub async fn run_rule(db: &Db, range: &Range, cfg: &Config, rule: RuleId) -> Result<Vec<Finding>> {
    match rule {
        RuleId::SessionIdStillSent => rules::session_id_still_sent::run(db, range, cfg).await,
        RuleId::InitializeStillCalled => rules::initialize_still_called::run(db, range, cfg).await,
        RuleId::Status4xxSpike => rules::status_4xx_spike::run(db, range, cfg).await,
        RuleId::CrossInstanceHandleFailure => {
            rules::cross_instance_handle_failure::run(db, range, cfg).await
        }
        RuleId::RoutingHeadersMissing => {
            rules::routing_headers::run(db, range, cfg, rules::routing_headers::Kind::Missing).await
        }
        RuleId::RoutingHeaderMismatch => {
            rules::routing_headers::run(db, range, cfg, rules::routing_headers::Kind::Mismatch)
                .await
        }
        RuleId::ListRefetchedBeforeTtl => {
            rules::list_refetched_before_ttl::run(db, range, cfg).await
        }
        RuleId::LegacyTasksApi => rules::legacy_tasks_api::run(db, range, cfg).await,
        RuleId::DeprecatedFeatureUsed => rules::deprecated_feature_used::run(db, range, cfg).await,
    }
}

/// Runs `which` rules (in order) and the readiness verdict. A failing rule is recorded in
/// [`RuleRun::error`] and does not stop the others.
pub async fn analyze(db: &Db, range: Range, cfg: &Config, which: &[RuleId]) -> Analysis {
    let mut findings = Vec::new();
    let mut runs = Vec::new();
    for &rule in which {
        let t = Instant::now();
        let res = run_rule(db, &range, cfg, rule).await;
        let duration_ms = t.elapsed().as_secs_f64() * 1000.0;
        match res {
            Ok(f) => {
                tracing::debug!(rule = %rule, findings = f.len(), duration_ms, "rule done");
                runs.push(RuleRun {
                    rule,
                    duration_ms,
                    findings: f.len(),
                    error: None,
                });
                findings.extend(f);
            }
            Err(e) => {
                tracing::error!(rule = %rule, error = %format!("{e:#}"), "rule failed");
                runs.push(RuleRun {
                    rule,
                    duration_ms,
                    findings: 0,
                    error: Some(format!("{e:#}")),
                });
            }
        }
    }
    let rank = |r: RuleId| {
        RuleId::ALL
            .iter()
            .position(|x| *x == r)
            .unwrap_or(usize::MAX)
    };
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(rank(a.rule).cmp(&rank(b.rule)))
            .then(b.count.cmp(&a.count))
            .then(a.fingerprint().cmp(&b.fingerprint()))
    });
    let t = Instant::now();
    let (readiness, readiness_error) = match readiness::compute(db, &range, cfg, &findings).await {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    tracing::debug!(
        duration_ms = t.elapsed().as_secs_f64() * 1000.0,
        "readiness done"
    );
    Analysis {
        range,
        findings,
        rules: runs,
        readiness,
        readiness_error,
    }
}
