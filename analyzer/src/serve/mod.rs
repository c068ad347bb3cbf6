//! `mcptap-analyzer serve`: the rules as a long-running service.
//!
//! - A background task ([`App::refresh`]) re-runs every rule every `--interval` over the
//!   trailing `--window` (ending at `--until`, `now` by default), caches the [`Snapshot`],
//!   updates the Prometheus gauges ([`metrics`]) and sends webhook notifications
//!   ([`notify`]: Alertmanager and Slack payloads, deduplicated, with resolve).
//! - [`api::router`] serves the JSON API (`/api/v1/...`), `/metrics`, `/healthz`, `/readyz` and
//!   the web page (`/`, assets embedded from `analyzer/web/`).
//!
//! Requests without `since`/`until` are answered from the cache; explicit ranges run the rules
//! on demand (at most [`ServeConfig::max_range_ns`] long, at most two at a time).
//!
//! Reference: `analyzer/SERVE.md` (routes, flags, auth, webhooks), `analyzer/METRICS.md`.

pub mod api;
pub mod http;
pub mod metrics;
pub mod notify;
pub mod series;
pub mod traces;
mod web;

use crate::clickhouse::Db;
use crate::config::{Config, Range};
use crate::engine::{self, Analysis};
use crate::finding::{Finding, RuleId};
use crate::report::SourceInfo;
use crate::timeutil;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Everything `serve` needs besides the ClickHouse connection. Its `Debug` never prints the
/// bearer token or webhook URLs (Slack webhook URLs are credentials).
#[derive(Clone)]
pub struct ServeConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Time between background analyses.
    pub interval: Duration,
    /// Length of the trailing window analysed in the background, ns.
    pub window_ns: i64,
    /// End of the background window: `now`, an RFC 3339 time (pins the window, e.g. to
    /// replay a capture), or a duration before now. Re-evaluated at every run.
    pub until: String,
    /// Longest range an API request may ask for, ns (longer: HTTP 400).
    pub max_range_ns: i64,
    /// Most points a series request may ask for (more: HTTP 400).
    pub max_series_points: i64,
    /// Deadline of one on-demand run (an explicit range or a series), waiting for one of the
    /// two on-demand permits included; past it the request gets 503 and the work is dropped.
    pub on_demand_timeout: Duration,
    /// Bearer token protecting `/api/*` (and `/metrics` when `protect_metrics`).
    pub bearer_token: Option<String>,
    /// Whether `/metrics` needs the bearer token too.
    pub protect_metrics: bool,
    /// Webhook receivers.
    pub webhooks: Vec<notify::Webhook>,
    /// Findings below this severity are not notified.
    pub notify_min_severity: crate::finding::Severity,
    /// Base URL of this service as users reach it (links in notifications), no trailing `/`.
    pub external_url: String,
    /// Timeout of one webhook POST.
    pub webhook_timeout: Duration,
    /// Rule thresholds.
    pub engine: Config,
    /// Time and number limits of the HTTP server.
    pub http: http::HttpLimits,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hooks: Vec<_> = self.webhooks.iter().map(|w| w.format).collect();
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("interval", &self.interval)
            .field("window_ns", &self.window_ns)
            .field("until", &self.until)
            .field("max_range_ns", &self.max_range_ns)
            .field("max_series_points", &self.max_series_points)
            .field("on_demand_timeout", &self.on_demand_timeout)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("protect_metrics", &self.protect_metrics)
            .field("webhooks (formats)", &hooks)
            .field("notify_min_severity", &self.notify_min_severity)
            .field("external_url", &self.external_url)
            .field("webhook_timeout", &self.webhook_timeout)
            .field("engine", &self.engine)
            .field("http", &self.http)
            .finish()
    }
}

/// Checks the fail-closed rule of `serve`: without a bearer token it listens on a loopback
/// address only, unless `insecure_no_auth` says so explicitly (`SECURITY.md`).
///
/// # Errors
/// No token, a non-loopback `listen` and no `insecure_no_auth`; the message names the fixes.
pub fn check_listen_auth(
    listen: SocketAddr,
    token: Option<&str>,
    insecure_no_auth: bool,
) -> Result<()> {
    if token.is_some() || listen.ip().is_loopback() || insecure_no_auth {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {listen} without a bearer token: the API (findings, client \
         names, session ids, traces) would be open to anyone who can reach it; set \
         --bearer-token or MCPTAP_ANALYZER_TOKEN, listen on a loopback address, or pass \
         --insecure-no-auth"
    )
}

/// One cached background analysis.
#[derive(Debug)]
pub struct Snapshot {
    /// The analysis.
    pub analysis: Analysis,
    /// When it finished, Unix ns.
    pub generated_ns: i64,
    /// Series computed over this snapshot's range, by `(rule, step_ns)`.
    pub series: Mutex<HashMap<(RuleId, i64), serde_json::Value>>,
}

/// Counters and gauges of the background runs (rendered by [`metrics::render`]).
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Completed background runs.
    pub runs_total: u64,
    /// End of the last run, Unix ns.
    pub last_run_ns: Option<i64>,
    /// Whether the last run reached ClickHouse (`SELECT 1` answered).
    pub clickhouse_up: bool,
    /// Last duration of each rule, seconds.
    pub rule_duration_s: BTreeMap<RuleId, f64>,
    /// Failed runs of each rule (background and on-demand).
    pub rule_errors_total: BTreeMap<RuleId, u64>,
    /// Failed readiness queries.
    pub readiness_errors_total: u64,
    /// On-demand analyses run for explicit ranges.
    pub on_demand_total: u64,
}

/// The shared state of the service.
pub struct App {
    db: RwLock<Db>,
    columns_detected: Mutex<bool>,
    /// The configuration.
    pub cfg: ServeConfig,
    cache: RwLock<Option<Arc<Snapshot>>>,
    stats: Mutex<RunStats>,
    notifier: tokio::sync::Mutex<notify::Notifier>,
    on_demand: tokio::sync::Semaphore,
    http: reqwest::Client,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("cfg", &self.cfg).finish()
    }
}

/// A short stable id of a finding: 16 lowercase hex digits of the FNV-1a 64-bit hash of
/// [`Finding::fingerprint`]. Used in URLs (`/api/v1/findings/{id}`, `#/finding/{id}`) and as
/// the Alertmanager alert `fingerprint`.
pub fn finding_id(f: &Finding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in f.fingerprint().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl App {
    /// Builds the state. Does not contact ClickHouse (columns are detected at the first run).
    ///
    /// # Errors
    /// The HTTP client for webhooks cannot be built.
    pub fn new(db: Db, cfg: ServeConfig) -> Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .timeout(cfg.webhook_timeout)
            .build()
            .context("webhook HTTP client")?;
        let notifier = notify::Notifier::new(cfg.webhooks.clone());
        Ok(Arc::new(Self {
            db: RwLock::new(db),
            columns_detected: Mutex::new(false),
            cfg,
            cache: RwLock::new(None),
            stats: Mutex::new(RunStats::default()),
            notifier: tokio::sync::Mutex::new(notifier),
            on_demand: tokio::sync::Semaphore::new(2),
            http,
        }))
    }

    /// Marks the columns as already detected (the caller ran [`Db::detect_columns`] or chose
    /// map-only expressions).
    pub fn columns_ready(&self) {
        if let Ok(mut g) = self.columns_detected.lock() {
            *g = true;
        }
    }

    /// A clone of the connection.
    pub fn db(&self) -> Db {
        match self.db.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Where the spans come from.
    pub fn source(&self) -> SourceInfo {
        let db = self.db();
        SourceInfo {
            database: db.database().to_string(),
            table: db.table().to_string(),
            materialized_columns: db.cols().uses_materialized(),
        }
    }

    /// The latest background snapshot.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.cache.read().ok().and_then(|g| g.clone())
    }

    /// A copy of the run statistics.
    pub fn stats(&self) -> RunStats {
        self.stats.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The background range at `now_ns`: `[until - window, until)`.
    ///
    /// # Errors
    /// `--until` does not parse.
    pub fn default_range(&self, now_ns: i64) -> Result<Range> {
        let until = timeutil::parse_time_arg(&self.cfg.until, now_ns).context("--until")?;
        Range::new(until.saturating_sub(self.cfg.window_ns), until)
    }

    /// Counts the errors of an analysis into the stats.
    fn record_errors(&self, a: &Analysis) {
        if let Ok(mut s) = self.stats.lock() {
            for r in &a.rules {
                if r.error.is_some() {
                    *s.rule_errors_total.entry(r.rule).or_default() += 1;
                }
            }
            if a.readiness_error.is_some() {
                s.readiness_errors_total += 1;
            }
        }
    }

    async fn ensure_columns(&self) -> Result<()> {
        let done = self.columns_detected.lock().map(|g| *g).unwrap_or(false);
        if done {
            return Ok(());
        }
        let mut db = self.db();
        db.detect_columns().await?;
        if let Ok(mut g) = self.db.write() {
            *g = db;
        }
        self.columns_ready();
        Ok(())
    }

    async fn ping(&self) -> bool {
        let db = self.db();
        let q = db.client().query("SELECT 1");
        db.execute(q).await.is_ok()
    }

    /// Runs every rule over an explicit range (on demand, at most two at a time).
    ///
    /// # Errors
    /// ClickHouse could not be reached to detect the table's columns.
    pub async fn analyze_range(&self, range: Range) -> Result<Analysis> {
        let a = self
            .on_demand(async {
                self.ensure_columns().await?;
                Ok(engine::analyze(&self.db(), range, &self.cfg.engine, &RuleId::ALL).await)
            })
            .await?;
        self.record_errors(&a);
        if let Ok(mut s) = self.stats.lock() {
            s.on_demand_total += 1;
        }
        Ok(a)
    }

    /// Runs on-demand work: holds one of the two on-demand permits, and gives up (dropping
    /// `work`, which cancels its queries) at [`ServeConfig::on_demand_timeout`] after the call,
    /// the wait for a permit included.
    ///
    /// # Errors
    /// `work` failed, or the deadline passed.
    pub async fn on_demand<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.cfg.on_demand_timeout;
        let run = async {
            let _permit = self.on_demand.acquire().await?;
            work.await
        };
        match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(timeout_s = limit.as_secs_f64(), "on-demand work timed out");
                anyhow::bail!(
                    "on-demand analysis took longer than --on-demand-timeout ({} s); ask for a \
                     shorter range or a larger step",
                    limit.as_secs_f64()
                )
            }
        }
    }

    /// One background run at `now_ns`: analyses the default range, replaces the cache, updates
    /// the stats and sends the webhook notifications. Returns the new snapshot.
    ///
    /// # Errors
    /// ClickHouse is unreachable (the previous snapshot stays cached) or `--until` is invalid.
    pub async fn refresh(&self, now_ns: i64) -> Result<Arc<Snapshot>> {
        let range = self.default_range(now_ns)?;
        let up = self.ping().await;
        let res = if up {
            self.ensure_columns().await
        } else {
            Err(anyhow::anyhow!("ClickHouse does not answer SELECT 1"))
        };
        if let Err(e) = res {
            if let Ok(mut s) = self.stats.lock() {
                s.clickhouse_up = up;
                s.runs_total += 1;
                s.last_run_ns = Some(timeutil::now_ns());
            }
            return Err(e);
        }
        let a = engine::analyze(&self.db(), range, &self.cfg.engine, &RuleId::ALL).await;
        self.record_errors(&a);
        let snap = Arc::new(Snapshot {
            analysis: a,
            generated_ns: timeutil::now_ns(),
            series: Mutex::new(HashMap::new()),
        });
        if let Ok(mut s) = self.stats.lock() {
            s.clickhouse_up = true;
            s.runs_total += 1;
            s.last_run_ns = Some(snap.generated_ns);
            for r in &snap.analysis.rules {
                s.rule_duration_s.insert(r.rule, r.duration_ms / 1000.0);
            }
        }
        if let Ok(mut g) = self.cache.write() {
            *g = Some(snap.clone());
        }
        let ctx = notify::Context {
            external_url: self.cfg.external_url.clone(),
            min_severity: self.cfg.notify_min_severity,
            now_ns: snap.generated_ns,
        };
        self.notifier
            .lock()
            .await
            .process(&self.http, &snap.analysis, &ctx)
            .await;
        Ok(snap)
    }

    /// Webhook delivery counters `(sent, errors)` per webhook index.
    pub async fn webhook_counters(&self) -> Vec<(String, u64, u64)> {
        self.notifier.lock().await.counters()
    }
}

/// Runs the background loop forever: [`App::refresh`] now and then every `--interval`.
pub async fn background(app: Arc<App>) {
    let mut tick = tokio::time::interval(app.cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match app.refresh(timeutil::now_ns()).await {
            Ok(s) => tracing::info!(
                findings = s.analysis.findings.len(),
                errors = s.analysis.has_errors(),
                "analysis refreshed"
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "analysis failed"),
        }
    }
}

/// Serves `app` on `listener` ([`http::serve`], within [`ServeConfig::http`]) with the
/// background loop until SIGINT/SIGTERM.
///
/// # Errors
/// None today (accept errors are retried); kept for callers.
pub async fn run(app: Arc<App>, listener: tokio::net::TcpListener) -> Result<()> {
    let bg = tokio::spawn(background(app.clone()));
    let limits = app.cfg.http;
    let router = api::router(app);
    http::serve(listener, router, limits, shutdown_signal()).await;
    bg.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::Source;

    #[test]
    fn debug_never_prints_the_token_or_webhook_urls() {
        let db = Db::new(&Source {
            url: "http://127.0.0.1:9".into(),
            user: None,
            password: None,
            database: "default".into(),
            table: "otel_traces".into(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let cfg = ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            interval: Duration::from_secs(60),
            window_ns: 3600 * timeutil::NS_PER_SEC,
            until: "now".into(),
            max_range_ns: 86_400 * timeutil::NS_PER_SEC,
            max_series_points: 120,
            on_demand_timeout: Duration::from_secs(30),
            bearer_token: Some("super-secret-token-123".into()),
            protect_metrics: false,
            webhooks: vec![notify::Webhook {
                url: "http://hooks.slack.example/services/T0/B0/XXXXsecret".into(),
                format: notify::WebhookFormat::Slack,
            }],
            notify_min_severity: crate::finding::Severity::Warning,
            external_url: "http://127.0.0.1:0".into(),
            webhook_timeout: Duration::from_secs(10),
            engine: Config::default(),
            http: http::HttpLimits::default(),
        };
        let app = App::new(db, cfg).unwrap_or_else(|e| panic!("{e}"));
        for text in [
            format!("{app:?}"),
            format!("{app:#?}"),
            format!("{:?}", app.cfg),
        ] {
            assert!(!text.contains("super-secret-token-123"), "{text}");
            assert!(!text.contains("XXXXsecret"), "{text}");
            assert!(
                text.contains("[REDACTED]") && text.contains("Slack"),
                "{text}"
            );
        }
    }

    #[test]
    fn listen_auth_rule() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|_| unreachable!());
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!());
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap_or_else(|_| unreachable!());
        assert!(check_listen_auth(any, None, false).is_err());
        assert!(check_listen_auth(any, Some("t"), false).is_ok());
        assert!(check_listen_auth(any, None, true).is_ok());
        assert!(check_listen_auth(lo, None, false).is_ok());
        assert!(check_listen_auth(lo6, None, false).is_ok());
    }
}
