//! The output model shared by every rule: [`Finding`], [`Severity`], [`RuleId`], [`Client`].
//!
//! The JSON form of these types is the stable report schema documented in
//! `analyzer/REPORT_SCHEMA.md`; field names and enum spellings must not change without bumping
//! [`crate::report::SCHEMA_VERSION`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not block the cutover by itself.
    Info,
    /// Blocks or degrades the stateless cutover; fix before removing sticky sessions.
    Warning,
    /// Requests are failing now because of it.
    Critical,
}

impl Severity {
    /// Lowercase name as in JSON (`info`, `warning`, `critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable rule identifiers (the `rule` field of a finding). See `analyzer/RULES.md`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
#[clap(rename_all = "snake_case")]
pub enum RuleId {
    /// Requests that carry `Mcp-Session-Id`.
    SessionIdStillSent,
    /// Clients that still run the `initialize` handshake.
    InitializeStillCalled,
    /// 4xx rate spikes per instance (optionally method/client) against a trailing baseline.
    /// (Explicit names: serde's and clap's snake_case would spell it `status4xx_spike`.)
    #[serde(rename = "status_4xx_spike")]
    #[value(name = "status_4xx_spike")]
    Status4xxSpike,
    /// A handle minted on one instance failed when used on another.
    CrossInstanceHandleFailure,
    /// Modern requests without a required `Mcp-Method`/`Mcp-Name`.
    RoutingHeadersMissing,
    /// Modern requests whose `Mcp-Method`/`Mcp-Name` disagree with the body.
    RoutingHeaderMismatch,
    /// Cacheable lists fetched again before their `ttlMs` ran out.
    ListRefetchedBeforeTtl,
    /// The 2025-11-25 tasks API (`tasks/result`, `tasks/list`, `params.task`).
    LegacyTasksApi,
    /// Roots, Sampling or Logging (deprecated by SEP-2577).
    DeprecatedFeatureUsed,
}

impl RuleId {
    /// Every rule, in report order.
    pub const ALL: [RuleId; 9] = [
        RuleId::SessionIdStillSent,
        RuleId::InitializeStillCalled,
        RuleId::Status4xxSpike,
        RuleId::CrossInstanceHandleFailure,
        RuleId::RoutingHeadersMissing,
        RuleId::RoutingHeaderMismatch,
        RuleId::ListRefetchedBeforeTtl,
        RuleId::LegacyTasksApi,
        RuleId::DeprecatedFeatureUsed,
    ];

    /// The stable snake_case id.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::SessionIdStillSent => "session_id_still_sent",
            RuleId::InitializeStillCalled => "initialize_still_called",
            RuleId::Status4xxSpike => "status_4xx_spike",
            RuleId::CrossInstanceHandleFailure => "cross_instance_handle_failure",
            RuleId::RoutingHeadersMissing => "routing_headers_missing",
            RuleId::RoutingHeaderMismatch => "routing_header_mismatch",
            RuleId::ListRefetchedBeforeTtl => "list_refetched_before_ttl",
            RuleId::LegacyTasksApi => "legacy_tasks_api",
            RuleId::DeprecatedFeatureUsed => "deprecated_feature_used",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who sent the requests. Identity = `mcptap.client.name`/`mcptap.client.version` when the
/// collector knew them, else `user_agent.original`; always with the source address
/// (`client.address`, which is the proxy's address for proxied traffic).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Client {
    /// clientInfo name (empty when unknown).
    pub name: String,
    /// clientInfo version (empty when unknown or when `name` is empty).
    pub version: String,
    /// `User-Agent`; part of the identity only when `name` is empty.
    pub user_agent: String,
    /// Source IP address of the TCP connection.
    pub address: String,
}

impl Client {
    /// Short human label: `name/version @ address`, or `ua:<user agent> @ address`.
    pub fn label(&self) -> String {
        let who = if !self.name.is_empty() {
            if self.version.is_empty() {
                self.name.clone()
            } else {
                format!("{}/{}", self.name, self.version)
            }
        } else if !self.user_agent.is_empty() {
            format!("ua:{}", self.user_agent)
        } else {
            "unknown".to_string()
        };
        if self.address.is_empty() {
            who
        } else {
            format!("{who} @ {}", self.address)
        }
    }
}

/// What a finding is about. Only the fields that apply to the rule are set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The client identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
    /// `service.instance.id` of the instance concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Every instance involved (sorted), when several are.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub instances: Vec<String>,
    /// MCP method (`mcp.method.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Tool name (`gen_ai.tool.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Handle key (the part before `=` of `mcptap.handles.*` entries), e.g. `basket_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// One problem found by a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id.
    pub rule: RuleId,
    /// Severity.
    pub severity: Severity,
    /// One-line human summary.
    pub summary: String,
    /// What the finding is about.
    pub subject: Subject,
    /// Number of spans (requests) behind the finding; the headline count.
    pub count: u64,
    /// Named breakdown counts (rule-specific keys, documented in RULES.md), e.g.
    /// `status_404`, `legacy_requests`.
    pub counts: BTreeMap<String, u64>,
    /// Start time of the earliest span, RFC 3339 UTC with nanoseconds.
    pub first_seen: String,
    /// Start time of the latest span, RFC 3339 UTC with nanoseconds.
    pub last_seen: String,
    /// A few trace ids (lowercase hex) to drill down into, problem spans first.
    pub sample_trace_ids: Vec<String>,
    /// Rule-specific details (an object; keys documented per rule in RULES.md).
    pub details: serde_json::Value,
}

impl Finding {
    /// A stable key identifying "the same" finding across runs (rule + subject), for
    /// deduplicating alerts: `rule|client|instance|method|tool|handle|instances`.
    pub fn fingerprint(&self) -> String {
        let s = &self.subject;
        format!(
            "{}|{}|{}|{}|{}|{}|{}",
            self.rule,
            s.client.as_ref().map(Client::label).unwrap_or_default(),
            s.instance.as_deref().unwrap_or(""),
            s.method.as_deref().unwrap_or(""),
            s.tool.as_deref().unwrap_or(""),
            s.handle.as_deref().unwrap_or(""),
            s.instances.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_serialise_as_their_stable_names() {
        for r in RuleId::ALL {
            let json = serde_json::to_value(r).ok();
            assert_eq!(json, Some(serde_json::Value::String(r.as_str().into())));
            let back: Option<RuleId> =
                serde_json::from_value(serde_json::Value::String(r.as_str().into())).ok();
            assert_eq!(back, Some(r));
            let cli = <RuleId as clap::ValueEnum>::from_str(r.as_str(), false).ok();
            assert_eq!(cli, Some(r), "{r}");
        }
    }
}
