//! `mcptap-analyzer`: command-line entry point.
//!
//! `mcptap-analyzer report --clickhouse-url URL [--since T] [--until T] [--format table|json]
//! [--fail-on SEVERITY]` prints what blocks the stateless cutover. Exit codes: 0 ok, 4 a
//! finding at or above `--fail-on`, 1 an error (connection, query, arguments), 2 usage.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mcptap_analyzer::clickhouse::{Cols, Db, Source};
use mcptap_analyzer::engine::{self, Config, Range, SpikeConfig};
use mcptap_analyzer::finding::{RuleId, Severity};
use mcptap_analyzer::report::{self, SourceInfo};
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
enum Command {
    /// Run every rule over a time range and print the findings and the readiness verdict.
    Report(ReportArgs),
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
    /// Sample trace ids per finding.
    #[arg(long, default_value_t = 5)]
    samples: usize,
}

async fn report_cmd(a: ReportArgs) -> Result<i32> {
    let now = timeutil::now_ns();
    let since = timeutil::parse_time_arg(&a.since, now).context("--since")?;
    let until = timeutil::parse_time_arg(&a.until, now).context("--until")?;
    let range = Range::new(since, until)?;
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.spike_min_rate),
        "--spike-min-rate must be within 0..1"
    );
    anyhow::ensure!(a.spike_factor >= 1.0, "--spike-factor must be >= 1");
    let cfg = Config {
        spike: SpikeConfig {
            bucket_ns: timeutil::parse_duration_ns(&a.spike_window).context("--spike-window")?,
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
        samples: a.samples.clamp(1, 50),
    };
    anyhow::ensure!(cfg.spike.bucket_ns > 0, "--spike-window must be positive");
    let mut db = Db::new(&Source {
        url: a.conn.clickhouse_url.clone(),
        user: a.conn.user.clone(),
        password: a.conn.password.clone(),
        database: a.conn.database.clone(),
        table: a.conn.table.clone(),
    })?;
    db.detect_columns().await.with_context(|| {
        format!(
            "reading {}.{} at {}",
            a.conn.database, a.conn.table, a.conn.clickhouse_url
        )
    })?;
    if a.conn.map_only {
        db.set_cols(Cols::map_only());
    }
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
        }
    });
    std::process::exit(code);
}
