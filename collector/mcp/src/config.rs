//! Decoder configuration: instance id, the handle rule, body capture, bounds,
//! and the proxies whose forwarding headers are believed.

pub use mcptap_wire::forwarded::TrustedProxies;

/// Which keys of tool arguments / structured results hold *handles* (server-minted
/// state identifiers such as `basket_id`, SEP-2567). Matching is case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleRule {
    /// A key matches when it ends with one of these.
    pub suffixes: Vec<String>,
    /// A key matches when it equals one of these.
    pub exact: Vec<String>,
}

impl Default for HandleRule {
    /// Suffixes `_id`, `Id`, `handle`; exact key `taskId`.
    fn default() -> Self {
        HandleRule {
            suffixes: vec!["_id".into(), "Id".into(), "handle".into()],
            exact: vec!["taskId".into()],
        }
    }
}

impl HandleRule {
    /// Parses a flag value: comma-separated items, each `suffix:<text>` or
    /// `key:<text>`, e.g. `suffix:_id,suffix:Id,suffix:handle,key:taskId`.
    /// Whitespace around items is ignored; empty items are skipped.
    ///
    /// # Errors
    /// Returns a message naming the first item without a `suffix:`/`key:` prefix
    /// or with an empty text.
    pub fn parse(s: &str) -> Result<HandleRule, String> {
        let mut rule = HandleRule {
            suffixes: Vec::new(),
            exact: Vec::new(),
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(v) = item.strip_prefix("suffix:") {
                if v.is_empty() {
                    return Err(format!("empty suffix in handle rule item {item:?}"));
                }
                rule.suffixes.push(v.to_string());
            } else if let Some(v) = item.strip_prefix("key:") {
                if v.is_empty() {
                    return Err(format!("empty key in handle rule item {item:?}"));
                }
                rule.exact.push(v.to_string());
            } else {
                return Err(format!(
                    "handle rule item {item:?} must start with \"suffix:\" or \"key:\""
                ));
            }
        }
        Ok(rule)
    }

    /// `true` when `key` is a handle key under this rule.
    pub fn matches(&self, key: &str) -> bool {
        self.exact.iter().any(|e| e == key)
            || self.suffixes.iter().any(|s| key.ends_with(s.as_str()))
    }
}

/// Decoder settings. All bounds are counts unless stated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// `service.instance.id` for every span (`--instance-id` / `POD_NAME`); `None`
    /// uses `"<server ip>:<port>"` of each flow (IPv6 as `[addr]:port`).
    pub instance_id: Option<String>,
    /// Which argument / result keys are handles.
    pub handle_rule: HandleRule,
    /// Export redacted request/response messages (`mcptap.request.body`,
    /// `mcptap.response.body`, notification params on span events).
    pub capture_bodies: bool,
    /// Cap per exported body, in bytes (cut on a UTF-8 boundary).
    pub capture_body_max_bytes: usize,
    /// Exchanges awaiting a response; when full the oldest is evicted (emitted
    /// flagged, counted in `McpStats::pending_evicted`). Minimum 1.
    pub max_pending: usize,
    /// Legacy session → client identity entries; oldest evicted when full.
    pub max_sessions: usize,
    /// SSE notifications recorded as span events per span; the rest are counted
    /// in `mcptap.sse.events_dropped`.
    pub max_span_events: usize,
    /// Socket peers whose forwarding headers (`Forwarded`, `X-Forwarded-For`,
    /// `X-Real-IP`) and mesh identity headers (`x-forwarded-client-cert`,
    /// `l5d-client-id`) are believed (`--trusted-proxies`; default: private,
    /// loopback and link-local ranges).
    pub trusted_proxies: TrustedProxies,
}

impl Default for DecoderConfig {
    /// No instance id, default handle rule, no body capture, 4096-byte body cap,
    /// 10 000 pending exchanges, 10 000 sessions, 64 span events.
    fn default() -> Self {
        DecoderConfig {
            instance_id: None,
            handle_rule: HandleRule::default(),
            capture_bodies: false,
            capture_body_max_bytes: 4096,
            max_pending: 10_000,
            max_sessions: 10_000,
            max_span_events: 64,
            trusted_proxies: TrustedProxies::default(),
        }
    }
}
