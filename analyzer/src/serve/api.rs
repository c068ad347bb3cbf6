//! HTTP routes of `serve` (axum). Reference with examples: `analyzer/SERVE.md`.
//!
//! | route | auth |
//! |---|---|
//! | `GET /`, `/app.js`, `/app.css` (the page, no data) | open |
//! | `GET /healthz`, `GET /readyz` | open |
//! | `GET /metrics` | open, or token with `--protect-metrics` |
//! | `GET /api/v1/findings`, `/api/v1/findings/{id}`, `/api/v1/readiness`, `/api/v1/rules`, `/api/v1/rules/{id}/series`, `/api/v1/traces/{trace_id}` | token when configured |
//!
//! Query parameters are validated here (times, rule ids, severities, steps, trace ids, range
//! length); invalid input is answered `400 {"error": {...}}` and never reaches ClickHouse.
//! Accepted values then only travel as bound query parameters.

use super::{App, finding_id, series, traces, web};
use crate::config::Range;
use crate::engine::Analysis;
use crate::finding::{RuleId, Severity};
use crate::timeutil;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// A JSON error answer: `{"error": {"status": 400, "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: msg.into(),
        }
    }
    fn not_found(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: msg.into(),
        }
    }
    fn unavailable(msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: msg.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"error": {"status": self.status.as_u16(), "message": self.message}})),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Query parameters as pairs (any malformed query string is a 400, in our JSON shape).
type Params = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

struct Q(Vec<(String, String)>);

impl Q {
    fn new(p: Params, allowed: &[&str]) -> Result<Self, ApiError> {
        let Query(v) = p.map_err(|e| ApiError::bad(format!("malformed query string: {e}")))?;
        for (k, val) in &v {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad(format!(
                    "unknown query parameter {k:?} (allowed: {})",
                    allowed.join(", ")
                )));
            }
            if val.len() > 200 {
                return Err(ApiError::bad(format!("query parameter {k} is too long")));
            }
        }
        Ok(Self(v))
    }
    fn one(&self, k: &str) -> Result<Option<&str>, ApiError> {
        let mut it = self.0.iter().filter(|(x, _)| x == k);
        let first = it.next().map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        if it.next().is_some() {
            return Err(ApiError::bad(format!("query parameter {k} given twice")));
        }
        Ok(first)
    }
    fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(x, _)| x == k)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// Parses a rule id (`unknown rule id` otherwise).
pub fn parse_rule(s: &str) -> Result<RuleId, ApiError> {
    RuleId::ALL
        .iter()
        .copied()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| {
            ApiError::bad(format!(
                "unknown rule id {s:?} (known: {})",
                RuleId::ALL.map(RuleId::as_str).join(", ")
            ))
        })
}

fn parse_severity(s: &str) -> Result<Severity, ApiError> {
    match s {
        "info" => Ok(Severity::Info),
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        _ => Err(ApiError::bad(format!(
            "unknown severity {s:?} (info, warning, critical)"
        ))),
    }
}

/// The explicit range of a request, or `None` (serve the cache) when neither `since` nor
/// `until` is given. `since` defaults to `until - --window`, `until` to `--until`.
fn explicit_range(app: &App, q: &Q) -> Result<Option<Range>, ApiError> {
    let (since, until) = (q.one("since")?, q.one("until")?);
    if since.is_none() && until.is_none() {
        return Ok(None);
    }
    let now = timeutil::now_ns();
    let until_ns = match until {
        Some(u) => {
            timeutil::parse_time_arg(u, now).map_err(|e| ApiError::bad(format!("until: {e:#}")))?
        }
        None => timeutil::parse_time_arg(&app.cfg.until, now)
            .map_err(|e| ApiError::bad(format!("--until: {e:#}")))?,
    };
    let since_ns = match since {
        Some(s) => {
            timeutil::parse_time_arg(s, now).map_err(|e| ApiError::bad(format!("since: {e:#}")))?
        }
        None => until_ns.saturating_sub(app.cfg.window_ns),
    };
    let r = Range::new(since_ns, until_ns).map_err(|e| ApiError::bad(format!("{e:#}")))?;
    if r.len_ns() > app.cfg.max_range_ns {
        return Err(ApiError::bad(format!(
            "range too long: at most {} s (--max-range)",
            app.cfg.max_range_ns / timeutil::NS_PER_SEC
        )));
    }
    Ok(Some(r))
}

/// The analysis for a request: the cached one, or an on-demand run over the explicit range.
async fn analysis_for(app: &App, q: &Q) -> Result<(Arc<Analysis>, bool), ApiError> {
    match explicit_range(app, q)? {
        None => {
            let snap = app.snapshot().ok_or_else(|| {
                ApiError::unavailable("the first background analysis has not finished yet")
            })?;
            Ok((Arc::new(snap.analysis.clone()), true))
        }
        Some(r) => {
            let a = app
                .analyze_range(r)
                .await
                .map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
            Ok((Arc::new(a), false))
        }
    }
}

/// Adds the API-only `id` and `fingerprint` fields to each finding of a report document.
fn add_ids(doc: &mut Value, a: &Analysis) {
    if let Some(arr) = doc.get_mut("findings").and_then(Value::as_array_mut) {
        for (v, f) in arr.iter_mut().zip(&a.findings) {
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), Value::String(finding_id(f)));
                o.insert("fingerprint".into(), Value::String(f.fingerprint()));
            }
        }
    }
}

fn json_response(v: Value) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(v)).into_response()
}

async fn findings(State(app): State<Arc<App>>, p: Params) -> ApiResult {
    let q = Q::new(p, &["since", "until", "rule", "severity"])?;
    let rules: Vec<RuleId> = q
        .all("rule")
        .into_iter()
        .map(parse_rule)
        .collect::<Result<_, _>>()?;
    let min = q.one("severity")?.map(parse_severity).transpose()?;
    let (a, cached) = analysis_for(&app, &q).await?;
    let mut a = (*a).clone();
    a.findings.retain(|f| {
        (rules.is_empty() || rules.contains(&f.rule)) && min.is_none_or(|m| f.severity >= m)
    });
    let mut doc = crate::report::to_json(&a, app.source(), timeutil::now_ns());
    add_ids(&mut doc, &a);
    if let Some(o) = doc.as_object_mut() {
        o.insert("cached".into(), Value::Bool(cached));
        if cached && let Some(s) = app.snapshot() {
            o.insert(
                "generated_at".into(),
                Value::String(timeutil::format_rfc3339_ns(s.generated_ns)),
            );
        }
    }
    Ok(json_response(doc))
}

async fn finding_by_id(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    p: Params,
) -> ApiResult {
    let q = Q::new(p, &["since", "until"])?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad("a finding id is 16 hex digits"));
    }
    let (a, _) = analysis_for(&app, &q).await?;
    let f = a
        .findings
        .iter()
        .find(|f| finding_id(f) == id)
        .ok_or_else(|| ApiError::not_found(format!("no finding {id} in the range")))?;
    let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("id".into(), Value::String(id));
        o.insert("fingerprint".into(), Value::String(f.fingerprint()));
    }
    Ok(json_response(json!({
        "range": range_json(&a.range),
        "finding": v,
    })))
}

fn range_json(r: &Range) -> Value {
    json!({
        "since": timeutil::format_rfc3339_ns(r.since_ns),
        "until": timeutil::format_rfc3339_ns(r.until_ns),
        "since_ns": r.since_ns,
        "until_ns": r.until_ns,
    })
}

async fn readiness(State(app): State<Arc<App>>, p: Params) -> ApiResult {
    let q = Q::new(p, &["since", "until"])?;
    let (a, cached) = analysis_for(&app, &q).await?;
    Ok(json_response(json!({
        "range": range_json(&a.range),
        "cached": cached,
        "readiness": a.readiness,
        "error": a.readiness_error,
    })))
}

async fn rules_list(State(app): State<Arc<App>>, p: Params) -> ApiResult {
    Q::new(p, &[])?;
    let snap = app.snapshot();
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(|r| {
            let run = snap
                .as_ref()
                .and_then(|s| s.analysis.rules.iter().find(|x| x.rule == *r).cloned());
            json!({"id": r.as_str(), "last_run": run})
        })
        .collect();
    Ok(json_response(json!({ "rules": rules })))
}

async fn rule_series(State(app): State<Arc<App>>, Path(id): Path<String>, p: Params) -> ApiResult {
    let q = Q::new(p, &["since", "until", "step"])?;
    let rule = parse_rule(&id)?;
    let explicit = explicit_range(&app, &q)?;
    let snap = if explicit.is_none() {
        Some(app.snapshot().ok_or_else(|| {
            ApiError::unavailable("the first background analysis has not finished yet")
        })?)
    } else {
        None
    };
    let range = match (&explicit, &snap) {
        (Some(r), _) => *r,
        (None, Some(s)) => s.analysis.range,
        (None, None) => return Err(ApiError::unavailable("no analysis")),
    };
    let step_ns = match q.one("step")? {
        Some(s) => {
            timeutil::parse_duration_ns(s).map_err(|e| ApiError::bad(format!("step: {e:#}")))?
        }
        None => series::default_step_ns(&range),
    };
    if step_ns < timeutil::NS_PER_SEC {
        return Err(ApiError::bad("step must be at least 1s"));
    }
    let n = series::points(&range, step_ns);
    if n > app.cfg.max_series_points.unsigned_abs() {
        return Err(ApiError::bad(format!(
            "{n} points: at most {} per series (use a larger step)",
            app.cfg.max_series_points
        )));
    }
    if let Some(s) = &snap
        && let Some(v) = s
            .series
            .lock()
            .ok()
            .and_then(|m| m.get(&(rule, step_ns)).cloned())
    {
        return Ok(json_response(v));
    }
    let max_points = app.cfg.max_series_points.unsigned_abs();
    let v = app
        .on_demand(async {
            app.ensure_columns().await?;
            let v =
                series::compute(&app.db(), &app.cfg.engine, rule, range, step_ns, max_points).await;
            Ok(v)
        })
        .await
        .map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
    if let Some(s) = &snap
        && let Ok(mut m) = s.series.lock()
    {
        m.insert((rule, step_ns), v.clone());
    }
    Ok(json_response(v))
}

async fn trace(State(app): State<Arc<App>>, Path(id): Path<String>, p: Params) -> ApiResult {
    Q::new(p, &[])?;
    let tid = traces::normalize_trace_id(&id)
        .ok_or_else(|| ApiError::bad("a trace id is 1 to 32 hex digits"))?;
    app.ensure_columns()
        .await
        .map_err(|e| ApiError::unavailable(format!("ClickHouse: {e:#}")))?;
    let spans = traces::spans(&app.db(), &tid)
        .await
        .map_err(|e| ApiError::unavailable(format!("ClickHouse: {e:#}")))?;
    if spans.is_empty() {
        return Err(ApiError::not_found(format!("no spans for trace {tid}")));
    }
    Ok(json_response(json!({"trace_id": tid, "spans": spans})))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let snap = app.snapshot();
    let hooks = app.webhook_counters().await;
    let body = super::metrics::render(snap.as_deref(), &app.stats(), &hooks);
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], body).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, String) {
    let st = app.stats();
    if app.snapshot().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: first analysis pending\n".into(),
        );
    }
    if !st.clickhouse_up {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: ClickHouse unreachable at the last run\n".into(),
        );
    }
    (StatusCode::OK, "ready\n".into())
}

/// Constant-time equality of two byte strings (the length is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie `POST /login` sets (value: the token in lowercase hex).
pub const TOKEN_COOKIE: &str = "mcptap_analyzer_token";

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether the request carries the token (always true without one): `Authorization: Bearer
/// <token>` (RFC 6750 §2.1), or the [`TOKEN_COOKIE`] cookie set by the page's login form. A
/// token in the query string is never read.
pub fn authorized(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(token) = token else { return true };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .is_some_and(|got| ct_eq(got.trim().as_bytes(), token.as_bytes()));
    if bearer {
        return true;
    }
    let want = hex(token.as_bytes());
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == TOKEN_COOKIE && ct_eq(v.as_bytes(), want.as_bytes()))
}

async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if authorized(app.cfg.bearer_token.as_deref(), req.headers()) {
        next.run(req).await
    } else {
        let mut r = ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or wrong bearer token".into(),
        }
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"mcptap-analyzer\""),
        );
        r
    }
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

/// All routes.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/findings/{id}", get(finding_by_id))
        .route("/api/v1/readiness", get(readiness))
        .route("/api/v1/rules", get(rules_list))
        .route("/api/v1/rules/{id}/series", get(rule_series))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/{*rest}", get(api_not_found));
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    let api = api.route_layer(middleware::from_fn_with_state(app.clone(), auth));
    if app.cfg.protect_metrics {
        metrics_route =
            metrics_route.route_layer(middleware::from_fn_with_state(app.clone(), auth));
    }
    Router::new()
        .merge(api)
        .merge(metrics_route)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(web::router())
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check() {
        let mut h = HeaderMap::new();
        assert!(authorized(None, &h));
        assert!(!authorized(Some("t0k"), &h));
        h.insert(
            header::AUTHORIZATION,
            "Bearer t0k".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(authorized(Some("t0k"), &h));
        assert!(!authorized(Some("t0K"), &h));
        assert!(!authorized(Some("t0k0"), &h));
        h.insert(
            header::AUTHORIZATION,
            "Basic t0k".parse().unwrap_or_else(|_| unreachable!()),
        );
        assert!(!authorized(Some("t0k"), &h));
        assert!(ct_eq(b"abc", b"abc") && !ct_eq(b"abc", b"abd") && !ct_eq(b"ab", b"abc"));
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            "a=b; mcptap_analyzer_token=74306b"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(authorized(Some("t0k"), &c));
        assert!(!authorized(Some("t0K"), &c));
        c.insert(
            header::COOKIE,
            "mcptap_analyzer_token=t0k"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert!(
            !authorized(Some("t0k"), &c),
            "the cookie holds hex, not the token"
        );
    }

    #[test]
    fn ids_and_rules() {
        assert_eq!(
            traces::normalize_trace_id("ABCdef01").as_deref(),
            Some("abcdef01")
        );
        assert!(traces::normalize_trace_id("").is_none());
        assert!(traces::normalize_trace_id("xyz").is_none());
        assert!(traces::normalize_trace_id("a' OR 1=1").is_none());
        assert!(traces::normalize_trace_id(&"a".repeat(33)).is_none());
        for r in RuleId::ALL {
            assert_eq!(parse_rule(r.as_str()).ok(), Some(r));
        }
        assert!(parse_rule("status4xx_spike").is_err());
        assert!(parse_severity("critical").is_ok() && parse_severity("CRIT").is_err());
    }
}
