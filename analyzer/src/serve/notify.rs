//! Webhook notifications of findings: Alertmanager-compatible and Slack-compatible payloads,
//! deduplicated, with resolve.
//!
//! Each webhook keeps the set of findings it has been told are firing, keyed by
//! [`super::finding_id`] (a hash of [`Finding::fingerprint`]: rule + subject). After every
//! background run:
//! - a finding (at or above `--notify-min-severity`) not in the set is sent as `firing`;
//! - a finding in the set that is gone is sent once as `resolved` — only when its rule ran
//!   without error this time (a failing rule resolves nothing);
//! - a finding still firing is not sent again.
//!
//! All changes of one run go in one POST per webhook. The set is updated only when the POST
//! answered 2xx, so a failed delivery is retried (with the then-current changes) next run.
//!
//! Payloads: the Alertmanager webhook JSON (`version: "4"`, `groupKey`, `status`, `receiver`,
//! `groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`, `alerts[]`,
//! <https://prometheus.io/docs/alerting/latest/configuration/#webhook_config>), and the Slack
//! incoming-webhook message (`text` + Block Kit `blocks`).

use super::finding_id;
use crate::engine::Analysis;
use crate::finding::{Finding, RuleId, Severity};
use crate::timeutil::format_rfc3339_ns;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// Payload format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WebhookFormat {
    /// Alertmanager webhook JSON (version 4).
    Alertmanager,
    /// Slack incoming-webhook message.
    Slack,
}

/// A webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `http://` URL the payload is POSTed to.
    pub url: String,
    /// Payload format.
    pub format: WebhookFormat,
}

/// Values the payloads need besides the findings.
#[derive(Debug, Clone)]
pub struct Context {
    /// Base URL of the service (links), no trailing `/`.
    pub external_url: String,
    /// Findings below this severity are ignored.
    pub min_severity: Severity,
    /// Time of the run, Unix ns (`endsAt` of resolved alerts).
    pub now_ns: i64,
}

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// New finding.
    Firing,
    /// Finding gone.
    Resolved,
}

impl Status {
    /// `firing` / `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert to send.
#[derive(Debug, Clone)]
pub struct Change {
    /// Firing or resolved.
    pub status: Status,
    /// The finding (for resolved: as last seen firing).
    pub finding: Finding,
    /// [`finding_id`].
    pub id: String,
    /// When it started firing (RFC 3339): the finding's `first_seen`.
    pub starts_at: String,
    /// RFC 3339 resolve time, or `0001-01-01T00:00:00Z` while firing (Alertmanager's zero).
    pub ends_at: String,
}

#[derive(Debug)]
struct HookState {
    hook: Webhook,
    firing: BTreeMap<String, Finding>,
    sent: u64,
    errors: u64,
}

/// Per-webhook delivery state.
#[derive(Debug)]
pub struct Notifier {
    hooks: Vec<HookState>,
}

/// The Alertmanager zero time used as `endsAt` of firing alerts.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Changes between what was notified (`firing`) and the current findings.
pub fn diff(
    firing: &BTreeMap<String, Finding>,
    current: &[Finding],
    ok_rules: &HashSet<RuleId>,
    ctx: &Context,
) -> Vec<Change> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for f in current.iter().filter(|f| f.severity >= ctx.min_severity) {
        let id = finding_id(f);
        if !seen.insert(id.clone()) {
            continue;
        }
        if !firing.contains_key(&id) {
            out.push(Change {
                status: Status::Firing,
                finding: f.clone(),
                starts_at: f.first_seen.clone(),
                ends_at: ZERO_TIME.to_string(),
                id,
            });
        }
    }
    for (id, f) in firing {
        if !seen.contains(id) && ok_rules.contains(&f.rule) {
            out.push(Change {
                status: Status::Resolved,
                finding: f.clone(),
                id: id.clone(),
                starts_at: f.first_seen.clone(),
                ends_at: format_rfc3339_ns(ctx.now_ns),
            });
        }
    }
    out
}

fn labels(f: &Finding) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("alertname".into(), f.rule.as_str().to_string());
    l.insert("rule".into(), f.rule.as_str().to_string());
    l.insert("severity".into(), f.severity.as_str().to_string());
    l.insert("service".into(), "mcptap-analyzer".into());
    let s = &f.subject;
    if let Some(c) = &s.client {
        l.insert("client".into(), c.label());
        if !c.name.is_empty() {
            l.insert("client_name".into(), c.name.clone());
        }
    }
    if let Some(i) = &s.instance {
        l.insert("instance".into(), i.clone());
    } else if !s.instances.is_empty() {
        l.insert("instance".into(), s.instances.join(","));
    }
    if !s.instances.is_empty() {
        l.insert("instances".into(), s.instances.join(","));
    }
    for (k, v) in [
        ("method", &s.method),
        ("tool", &s.tool),
        ("handle", &s.handle),
    ] {
        if let Some(v) = v {
            l.insert(k.into(), v.clone());
        }
    }
    l
}

fn link(ctx: &Context, id: &str) -> String {
    format!("{}/#/finding/{id}", ctx.external_url)
}

fn description(f: &Finding) -> String {
    let mut d = format!(
        "{} request(s) from {} to {}",
        f.count, f.first_seen, f.last_seen
    );
    if !f.counts.is_empty() {
        let c: Vec<String> = f.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        d.push_str(&format!("; {}", c.join(", ")));
    }
    if !f.sample_trace_ids.is_empty() {
        d.push_str(&format!(
            "; sample traces: {}",
            f.sample_trace_ids
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    d
}

/// The Alertmanager webhook payload (version 4) for `changes` (not empty).
pub fn alertmanager_payload(changes: &[Change], ctx: &Context) -> Value {
    let all_labels: Vec<BTreeMap<String, String>> =
        changes.iter().map(|c| labels(&c.finding)).collect();
    let mut common: BTreeMap<String, String> = all_labels.first().cloned().unwrap_or_default();
    for l in &all_labels {
        common.retain(|k, v| l.get(k) == Some(v));
    }
    let mut common_ann: BTreeMap<String, String> = BTreeMap::new();
    if let [only] = changes {
        common_ann.insert("summary".into(), only.finding.summary.clone());
        common_ann.insert("description".into(), description(&only.finding));
    }
    let status = if changes.iter().any(|c| c.status == Status::Firing) {
        "firing"
    } else {
        "resolved"
    };
    let alerts: Vec<Value> = changes
        .iter()
        .zip(all_labels)
        .map(|(c, l)| {
            json!({
                "status": c.status.as_str(),
                "labels": l,
                "annotations": {
                    "summary": c.finding.summary,
                    "description": description(&c.finding),
                    "sample_trace_ids": c.finding.sample_trace_ids.join(" "),
                },
                "startsAt": c.starts_at,
                "endsAt": c.ends_at,
                "generatorURL": link(ctx, &c.id),
                "fingerprint": c.id,
            })
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": "{}:{service=\"mcptap-analyzer\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "mcptap-analyzer",
        "groupLabels": {"service": "mcptap-analyzer"},
        "commonLabels": common,
        "commonAnnotations": common_ann,
        "externalURL": ctx.external_url,
        "alerts": alerts,
    })
}

/// Slack keeps at most 50 blocks per message; alerts beyond this are summarised.
const SLACK_MAX_ALERTS: usize = 40;

/// The Slack incoming-webhook payload (`text` + `blocks`) for `changes` (not empty).
pub fn slack_payload(changes: &[Change], ctx: &Context) -> Value {
    let firing = changes
        .iter()
        .filter(|c| c.status == Status::Firing)
        .count();
    let resolved = changes.len() - firing;
    let text = format!(
        "mcptap-analyzer: {firing} finding(s) firing, {resolved} resolved — {}",
        ctx.external_url
    );
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": format!("mcptap-analyzer: {firing} firing, {resolved} resolved")}
    })];
    for c in changes.iter().take(SLACK_MAX_ALERTS) {
        let icon = match (c.status, c.finding.severity) {
            (Status::Resolved, _) => ":white_check_mark:",
            (_, Severity::Critical) => ":red_circle:",
            (_, Severity::Warning) => ":warning:",
            (_, Severity::Info) => ":information_source:",
        };
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!(
                "{icon} *{}* `{}` ({}) — {}\n{} <{}|drill-down>",
                c.status.as_str().to_uppercase(),
                c.finding.rule,
                c.finding.severity,
                slack_escape(&c.finding.summary),
                slack_escape(&description(&c.finding)),
                link(ctx, &c.id)
            )}
        }));
    }
    if changes.len() > SLACK_MAX_ALERTS {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("… and {} more; see {}", changes.len() - SLACK_MAX_ALERTS, ctx.external_url)}]
        }));
    }
    json!({"text": text, "blocks": blocks})
}

/// Escapes `&`, `<`, `>` as Slack's mrkdwn requires.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Notifier {
    /// No finding notified yet.
    pub fn new(hooks: Vec<Webhook>) -> Self {
        Self {
            hooks: hooks
                .into_iter()
                .map(|hook| HookState {
                    hook,
                    firing: BTreeMap::new(),
                    sent: 0,
                    errors: 0,
                })
                .collect(),
        }
    }

    /// `(webhook index, delivered POSTs, failed POSTs)` per webhook.
    pub fn counters(&self) -> Vec<(String, u64, u64)> {
        self.hooks
            .iter()
            .enumerate()
            .map(|(i, h)| (i.to_string(), h.sent, h.errors))
            .collect()
    }

    /// Sends the changes of `a` to every webhook (see the module doc).
    pub async fn process(&mut self, http: &reqwest::Client, a: &Analysis, ctx: &Context) {
        let ok_rules: HashSet<RuleId> = a
            .rules
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| r.rule)
            .collect();
        for (i, h) in self.hooks.iter_mut().enumerate() {
            let changes = diff(&h.firing, &a.findings, &ok_rules, ctx);
            if changes.is_empty() {
                continue;
            }
            let body = match h.hook.format {
                WebhookFormat::Alertmanager => alertmanager_payload(&changes, ctx),
                WebhookFormat::Slack => slack_payload(&changes, ctx),
            };
            let res = http
                .post(&h.hook.url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    h.sent += 1;
                    for c in changes {
                        match c.status {
                            Status::Firing => {
                                h.firing.insert(c.id, c.finding);
                            }
                            Status::Resolved => {
                                h.firing.remove(&c.id);
                            }
                        }
                    }
                }
                Ok(r) => {
                    h.errors += 1;
                    tracing::warn!(webhook = i, status = %r.status(), "webhook refused the notification");
                }
                Err(e) => {
                    h.errors += 1;
                    tracing::warn!(webhook = i, error = %e, "webhook delivery failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Client, Subject};
    use std::collections::BTreeMap;

    fn finding(rule: RuleId, sev: Severity, client: &str, count: u64) -> Finding {
        Finding {
            rule,
            severity: sev,
            summary: format!("{client} <did> & things"),
            subject: Subject {
                client: Some(Client {
                    name: client.into(),
                    version: "1".into(),
                    user_agent: String::new(),
                    address: "10.0.0.1".into(),
                }),
                ..Subject::default()
            },
            count,
            counts: BTreeMap::from([("requests".to_string(), count)]),
            first_seen: "2026-11-21T05:51:00.000000000Z".into(),
            last_seen: "2026-11-21T05:52:00.000000000Z".into(),
            sample_trace_ids: vec!["ab".into()],
            details: serde_json::json!({}),
        }
    }

    fn ctx(min: Severity) -> Context {
        Context {
            external_url: "http://x".into(),
            min_severity: min,
            now_ns: 0,
        }
    }

    #[test]
    fn diff_fires_new_resolves_gone_and_keeps_failed_rules() {
        let a = finding(RuleId::SessionIdStillSent, Severity::Critical, "a", 3);
        let b = finding(RuleId::InitializeStillCalled, Severity::Warning, "b", 1);
        let info = finding(RuleId::SessionIdStillSent, Severity::Info, "i", 1);
        let all: HashSet<RuleId> = RuleId::ALL.into_iter().collect();
        let c = ctx(Severity::Warning);
        let d = diff(&BTreeMap::new(), &[a.clone(), b.clone(), info], &all, &c);
        assert_eq!(d.len(), 2, "info is below the minimum");
        assert!(
            d.iter()
                .all(|x| x.status == Status::Firing && x.ends_at == ZERO_TIME)
        );
        // Same finding with other counts: same id, nothing to send.
        let mut firing = BTreeMap::new();
        firing.insert(finding_id(&a), a.clone());
        firing.insert(finding_id(&b), b.clone());
        let a2 = finding(RuleId::SessionIdStillSent, Severity::Critical, "a", 30);
        assert_eq!(finding_id(&a2), finding_id(&a));
        assert!(diff(&firing, &[a2.clone(), b.clone()], &all, &c).is_empty());
        // b gone: resolved, unless its rule failed.
        let d = diff(&firing, std::slice::from_ref(&a2), &all, &c);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].status, Status::Resolved);
        assert_eq!(d[0].id, finding_id(&b));
        assert_eq!(d[0].ends_at, "1970-01-01T00:00:00.000000000Z");
        let ok: HashSet<RuleId> = [RuleId::SessionIdStillSent].into_iter().collect();
        assert!(diff(&firing, &[a2], &ok, &c).is_empty());
    }

    #[test]
    fn payloads() {
        let a = finding(RuleId::SessionIdStillSent, Severity::Critical, "a", 3);
        let c = ctx(Severity::Info);
        let ch = diff(
            &BTreeMap::new(),
            std::slice::from_ref(&a),
            &HashSet::new(),
            &c,
        );
        let am = alertmanager_payload(&ch, &c);
        assert_eq!(am["version"], "4");
        assert_eq!(am["status"], "firing");
        assert_eq!(am["commonLabels"]["alertname"], "session_id_still_sent");
        assert_eq!(am["commonAnnotations"]["summary"], a.summary);
        let al = &am["alerts"][0];
        assert_eq!(al["labels"]["client"], "a/1 @ 10.0.0.1");
        assert_eq!(al["labels"]["severity"], "critical");
        assert_eq!(al["fingerprint"], finding_id(&a));
        assert_eq!(
            al["generatorURL"],
            format!("http://x/#/finding/{}", finding_id(&a))
        );
        let sl = slack_payload(&ch, &c);
        let t = sl["blocks"][1]["text"]["text"].as_str().unwrap_or_default();
        assert!(t.contains("&lt;did&gt; &amp; things"), "{t}");
        assert!(t.starts_with(":red_circle: *FIRING*"));
        // Many alerts: capped blocks.
        let many: Vec<Change> = (0..100)
            .map(|i| {
                let f = finding(
                    RuleId::SessionIdStillSent,
                    Severity::Warning,
                    &i.to_string(),
                    1,
                );
                diff(&BTreeMap::new(), &[f], &HashSet::new(), &c).remove(0)
            })
            .collect();
        let sl = slack_payload(&many, &c);
        assert_eq!(
            sl["blocks"].as_array().map(Vec::len),
            Some(SLACK_MAX_ALERTS + 2)
        );
    }
}
