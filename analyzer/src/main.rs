//! `mcptap-analyzer`: command-line entry point.
//!
//! `mcptap-analyzer report --clickhouse-url URL [--since T] [--until T] [--format table|json]
//! [--fail-on SEVERITY]` prints what blocks the stateless cutover. Exit codes: 0 ok, 4 a
//! finding at or above `--fail-on`, 1 an error (connection, query, arguments), 2 usage.
//!
//! `mcptap-analyzer serve --clickhouse-url URL [--listen ADDR] [--interval D] [--window D]
//! [--bearer-token T] [--webhook URL]...` runs the HTTP service (`analyzer/SERVE.md`).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mcptap_analyzer::clickhouse::{Cols, Db, Source};
use mcptap_analyzer::config::{Config, Range, SpikeConfig};
use mcptap_analyzer::engine;
use mcptap_analyzer::finding::{RuleId, Severity};
use mcptap_analyzer::report::{self, SourceInfo};
use mcptap_analyzer::serve::http::HttpLimits;
use mcptap_analyzer::serve::notify::{Webhook, WebhookFormat};
use mcptap_analyzer::serve::{self, App, ServeConfig};
use mcptap_analyzer::timeutil;

#[derive(Parser, Debug)]
#[command(
    name = "mcptap-analyzer",
    version,
    about = "Finds what blocks the MCP 2026-07-28 stateless cutover in mcptap spans stored in ClickHouse."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Run every rule over a time range and print the findings and the readiness verdict.
    Report(ReportArgs),
    /// Serve the findings: JSON API, /metrics, webhook notifications and a web page,
    /// re-running the rules every --interval over the trailing --window.
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
struct ConnArgs {
    /// ClickHouse HTTP URL.
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    /// ClickHouse user (a read-only user is enough).
    #[arg(long, alias = "clickhouse-user", env = "CLICKHOUSE_USER")]
    user: Option<String>,
    /// ClickHouse password.
    #[arg(
        long,
        alias = "clickhouse-password",
        env = "CLICKHOUSE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// Database of the traces table (plain identifier).
    #[arg(
        long,
        alias = "clickhouse-database",
        env = "CLICKHOUSE_DATABASE",
        default_value = "default"
    )]
    database: String,
    /// Traces table (plain identifier).
    #[arg(
        long,
        alias = "clickhouse-table",
        env = "MCPTAP_CLICKHOUSE_TABLE",
        default_value = "otel_traces"
    )]
    table: String,
    /// Ignore mcptap's MATERIALIZED columns and read the attribute maps only.
    #[arg(long)]
    map_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
struct ReportArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Start of the range: RFC 3339 time, or a duration before now (`30m`, `1h`, `7d`).
    #[arg(long, default_value = "24h")]
    since: String,
    /// End of the range (exclusive): RFC 3339 time, `now`, or a duration before now.
    #[arg(long, default_value = "now")]
    until: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Exit with code 4 when a finding has this severity or higher.
    #[arg(long, value_enum)]
    fail_on: Option<Severity>,
    /// Run only these rules (repeatable; default all).
    #[arg(long = "rule", value_enum)]
    rules: Vec<RuleId>,
    #[command(flatten)]
    thresholds: RuleArgs,
}

/// Rule thresholds shared by `report` and `serve`.
#[derive(Args, Debug)]
struct RuleArgs {
    /// status_4xx_spike: window length (duration).
    #[arg(long, default_value = "1m")]
    spike_window: String,
    /// status_4xx_spike: trailing baseline length, in windows.
    #[arg(long, default_value_t = 60)]
    spike_baseline_windows: u32,
    /// status_4xx_spike: minimum 4xx answers in a window.
    #[arg(long, default_value_t = 5)]
    spike_min_count: u64,
    /// status_4xx_spike: minimum 4xx rate (0..1) in a window.
    #[arg(long, default_value_t = 0.05)]
    spike_min_rate: f64,
    /// status_4xx_spike: the window rate must be this many times the baseline rate.
    #[arg(long, default_value_t = 3.0)]
    spike_factor: f64,
    /// status_4xx_spike: peak rate at/above which a spike is critical.
    #[arg(long, default_value_t = 0.5)]
    spike_critical_rate: f64,
    /// status_4xx_spike: also split windows by MCP method.
    #[arg(long)]
    spike_by_method: bool,
    /// status_4xx_spike: also split windows by client.
    #[arg(long)]
    spike_by_client: bool,
    /// cross_instance_handle_failure: how far before --since to look for a handle's mint.
    #[arg(long, default_value = "24h")]
    handle_lookback: String,
    /// Client identity: how far before --since to look for the span that minted a session,
    /// to name the client of session spans without clientInfo (answered by another pod).
    #[arg(long, default_value = "24h")]
    session_lookback: String,
    /// Sample trace ids per finding.
    #[arg(long, default_value_t = 5)]
    samples: usize,
}

impl RuleArgs {
    fn config(&self) -> Result<Config> {
        let a = self;
        anyhow::ensure!(
            (0.0..=1.0).contains(&a.spike_min_rate),
            "--spike-min-rate must be within 0..1"
        );
        anyhow::ensure!(a.spike_factor >= 1.0, "--spike-factor must be >= 1");
        let cfg = Config {
            spike: SpikeConfig {
                bucket_ns: timeutil::parse_duration_ns(&a.spike_window)
                    .context("--spike-window")?,
                baseline_buckets: a.spike_baseline_windows,
                min_count: a.spike_min_count.max(1),
                min_rate: a.spike_min_rate,
                factor: a.spike_factor,
                critical_rate: a.spike_critical_rate,
                by_method: a.spike_by_method,
                by_client: a.spike_by_client,
            },
            handle_lookback_ns: timeutil::parse_duration_ns(&a.handle_lookback)
                .context("--handle-lookback")?,
            session_lookback_ns: timeutil::parse_duration_ns(&a.session_lookback)
                .context("--session-lookback")?,
            samples: a.samples.clamp(1, 50),
        };
        anyhow::ensure!(cfg.spike.bucket_ns > 0, "--spike-window must be positive");
        Ok(cfg)
    }
}

impl ConnArgs {
    /// Connects and picks the column expressions.
    async fn db(&self) -> Result<Db> {
        let mut db = self.db_unchecked()?;
        db.detect_columns().await.with_context(|| {
            format!(
                "reading {}.{} at {}",
                self.database, self.table, self.clickhouse_url
            )
        })?;
        if self.map_only {
            db.set_cols(Cols::map_only());
        }
        Ok(db)
    }

    /// The client, without contacting the server.
    fn db_unchecked(&self) -> Result<Db> {
        Db::new(&Source {
            url: self.clickhouse_url.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone(),
            table: self.table.clone(),
        })
    }
}

#[derive(Args, Debug)]
struct ServeArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Address to listen on (HTTP).
    #[arg(long, env = "MCPTAP_ANALYZER_LISTEN", default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// Time between background analyses (duration).
    #[arg(long, default_value = "60s")]
    interval: String,
    /// Length of the analysed trailing window (duration).
    #[arg(long, default_value = "1h")]
    window: String,
    /// End of the background window: `now`, an RFC 3339 time (pins the window, e.g. to look
    /// at a replayed capture), or a duration before now.
    #[arg(long, default_value = "now")]
    until: String,
    /// Longest range an API request may ask for (longer: HTTP 400).
    #[arg(long, default_value = "31d")]
    max_range: String,
    /// Most points per series request (1 to 100000).
    #[arg(long, default_value_t = 120)]
    max_series_points: i64,
    /// Deadline of one on-demand analysis or series (explicit range), the wait for one of the
    /// two on-demand slots included (duration); past it: HTTP 503.
    #[arg(long, default_value = "30s")]
    on_demand_timeout: String,
    /// Bearer token required on /api/* (and on /metrics with --protect-metrics).
    #[arg(long, env = "MCPTAP_ANALYZER_TOKEN", hide_env_values = true)]
    bearer_token: Option<String>,
    /// Serve without a bearer token on a non-loopback --listen address (without this flag
    /// `serve` refuses to: anyone who can reach it would read every finding, client name,
    /// session id and trace).
    #[arg(long, conflicts_with = "bearer_token")]
    insecure_no_auth: bool,
    /// Require the bearer token on /metrics too.
    #[arg(long)]
    protect_metrics: bool,
    /// Time a client has to send a complete request head; also how long an idle keep-alive
    /// connection is kept (duration).
    #[arg(long, default_value = "10s")]
    header_read_timeout: String,
    /// Time without a byte in either direction before a connection is closed (duration).
    #[arg(long, default_value = "60s")]
    idle_timeout: String,
    /// Most HTTP connections at once (1 to 65536); at the cap a new connection evicts the
    /// oldest.
    #[arg(long, default_value_t = 512)]
    max_connections: usize,
    /// Webhook URL (http://) to notify (repeatable); payload per --webhook-format.
    #[arg(long = "webhook")]
    webhooks: Vec<String>,
    /// Payload format of the --webhook URLs.
    #[arg(long, value_enum, default_value_t = WebhookFormat::Alertmanager)]
    webhook_format: WebhookFormat,
    /// Slack incoming-webhook URL (repeatable), in addition to --webhook.
    #[arg(long = "slack-webhook")]
    slack_webhooks: Vec<String>,
    /// Do not notify findings below this severity.
    #[arg(long, value_enum, default_value_t = Severity::Warning)]
    notify_min_severity: Severity,
    /// Timeout of one webhook POST (duration).
    #[arg(long, default_value = "10s")]
    webhook_timeout: String,
    /// URL users reach this service at (links in notifications); default http://<listen>.
    #[arg(long)]
    external_url: Option<String>,
    #[command(flatten)]
    thresholds: RuleArgs,
}

fn duration_arg(s: &str, what: &str) -> Result<std::time::Duration> {
    let ns = timeutil::parse_duration_ns(s).with_context(|| what.to_string())?;
    anyhow::ensure!(ns > 0, "{what} must be positive");
    Ok(std::time::Duration::from_nanos(ns.unsigned_abs()))
}

/// The `--webhook` and `--slack-webhook` receivers.
fn webhooks(a: &ServeArgs) -> Result<Vec<Webhook>> {
    let mut out = Vec::new();
    for (urls, format) in [
        (&a.webhooks, a.webhook_format),
        (&a.slack_webhooks, WebhookFormat::Slack),
    ] {
        for u in urls {
            anyhow::ensure!(
                u.starts_with("http://"),
                "webhook {u:?}: only http:// URLs are supported (this build has no TLS); \
                 relay https receivers through an in-cluster proxy or Alertmanager"
            );
            out.push(Webhook {
                url: u.clone(),
                format,
            });
        }
    }
    Ok(out)
}

/// Checks every `serve` flag (before anything binds) into the configuration; `listen` and
/// `external_url` are those asked for (port 0 is resolved after binding).
fn serve_config(a: &ServeArgs) -> Result<ServeConfig> {
    let window_ns = timeutil::parse_duration_ns(&a.window).context("--window")?;
    anyhow::ensure!(window_ns > 0, "--window must be positive");
    let max_range_ns = timeutil::parse_duration_ns(&a.max_range).context("--max-range")?;
    anyhow::ensure!(max_range_ns > 0, "--max-range must be positive");
    anyhow::ensure!(
        (1..=100_000).contains(&a.max_series_points),
        "--max-series-points must be within 1..=100000"
    );
    anyhow::ensure!(
        (1..=65_536).contains(&a.max_connections),
        "--max-connections must be within 1..=65536"
    );
    timeutil::parse_time_arg(&a.until, timeutil::now_ns()).context("--until")?;
    if let Some(t) = &a.bearer_token {
        anyhow::ensure!(!t.trim().is_empty(), "--bearer-token is empty");
    }
    serve::check_listen_auth(a.listen, a.bearer_token.as_deref(), a.insecure_no_auth)?;
    Ok(ServeConfig {
        listen: a.listen,
        interval: duration_arg(&a.interval, "--interval")?,
        window_ns,
        until: a.until.clone(),
        max_range_ns,
        max_series_points: a.max_series_points,
        on_demand_timeout: duration_arg(&a.on_demand_timeout, "--on-demand-timeout")?,
        bearer_token: a.bearer_token.clone(),
        protect_metrics: a.protect_metrics,
        webhooks: webhooks(a)?,
        notify_min_severity: a.notify_min_severity,
        external_url: a.external_url.clone().unwrap_or_default(),
        webhook_timeout: duration_arg(&a.webhook_timeout, "--webhook-timeout")?,
        engine: a.thresholds.config()?,
        http: HttpLimits {
            header_read_timeout: duration_arg(&a.header_read_timeout, "--header-read-timeout")?,
            idle_timeout: duration_arg(&a.idle_timeout, "--idle-timeout")?,
            max_connections: a.max_connections,
        },
    })
}

async fn serve_cmd(a: ServeArgs) -> Result<i32> {
    let mut cfg = serve_config(&a)?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let local = listener.local_addr()?;
    cfg.listen = local;
    if cfg.external_url.is_empty() {
        cfg.external_url = format!("http://{local}");
    }
    cfg.external_url = cfg.external_url.trim_end_matches('/').to_string();
    let mut db = a.conn.db_unchecked()?;
    if a.conn.map_only {
        db.set_cols(Cols::map_only());
    }
    let app = App::new(db, cfg)?;
    if a.conn.map_only {
        app.columns_ready();
    }
    if a.bearer_token.is_none() && !local.ip().is_loopback() {
        tracing::warn!(listen = %local, "--insecure-no-auth: the API is open to anyone who can reach it");
    }
    eprintln!("mcptap-analyzer: serving on http://{local}/");
    serve::run(app, listener).await?;
    Ok(report::EXIT_OK)
}

async fn report_cmd(a: ReportArgs) -> Result<i32> {
    let now = timeutil::now_ns();
    let since = timeutil::parse_time_arg(&a.since, now).context("--since")?;
    let until = timeutil::parse_time_arg(&a.until, now).context("--until")?;
    let range = Range::new(since, until)?;
    let cfg = a.thresholds.config()?;
    let db = a.conn.db().await?;
    let rules: Vec<RuleId> = if a.rules.is_empty() {
        RuleId::ALL.to_vec()
    } else {
        a.rules.clone()
    };
    let analysis = engine::analyze(&db, range, &cfg, &rules).await;
    let source = SourceInfo {
        database: db.database().to_string(),
        table: db.table().to_string(),
        materialized_columns: db.cols().uses_materialized(),
    };
    match a.format {
        Format::Json => {
            let doc = report::to_json(&analysis, source, now);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Table => print!("{}", report::to_table(&analysis, &source)),
    }
    for e in analysis
        .rules
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| (r.rule, e)))
    {
        eprintln!("error: rule {}: {}", e.0, e.1);
    }
    if let Some(e) = &analysis.readiness_error {
        eprintln!("error: readiness: {e}");
    }
    Ok(report::exit_code(&analysis, a.fail_on))
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::exit(report::EXIT_ERROR);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Report(a) => match report_cmd(a).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    report::EXIT_ERROR
                }
            },
            Command::Serve(a) => match serve_cmd(a).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    report::EXIT_ERROR
                }
            },
        }
    });
    std::process::exit(code);
}
