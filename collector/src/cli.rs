//! Command-line interface of `mcptap-collector` (clap derive).
//!
//! Every flag also reads an environment variable (`MCPTAP_*`), so the sidecar
//! is configured from the pod spec; flags win over the environment.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Captures MCP Streamable HTTP traffic and turns each MCP request into an
/// OpenTelemetry SERVER span.
#[derive(Debug, Parser)]
#[command(
    name = "mcptap-collector",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Subcommand; without one, the collector captures per the run options.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of a capture run.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay the capture bundled in the binary (real MCP SDK traffic through a
    /// round-robin proxy to three pods) and print the summary.
    Demo {
        /// Where to write spans; default: summary only.
        #[arg(long, value_name = "otlp-json[=FILE]")]
        output: Option<String>,
        /// Where to export the demo's spans (ClickHouse, OTLP).
        #[command(flatten)]
        export: Box<ExportArgs>,
    },
    /// Create or upgrade the ClickHouse tables (apply the migrations of
    /// deploy/clickhouse/migrations, embedded in the binary) and report, per
    /// migration, applied / already applied / skipped. Idempotent.
    Schema(SchemaArgs),
    /// Add the mcptap-collector sidecar to Kubernetes manifests (Pod, Deployment,
    /// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, List) read from a file
    /// or stdin, and print them (like `linkerd inject`). Idempotent.
    Inject(Box<crate::inject::InjectArgs>),
}

/// Options of `mcptap-collector schema`.
#[derive(Debug, Args, Clone)]
pub struct SchemaArgs {
    /// ClickHouse HTTP URL, e.g. http://127.0.0.1:8123.
    #[arg(long, env = "CLICKHOUSE_URL", value_name = "URL")]
    pub clickhouse_url: String,
    /// Database to create the tables in.
    #[arg(
        long,
        alias = "clickhouse-database",
        env = "CLICKHOUSE_DATABASE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub database: String,
    /// Traces table name (the Distributed table with --cluster; the local one is `<table>_local`).
    #[arg(
        long,
        alias = "clickhouse-table",
        env = "MCPTAP_CLICKHOUSE_TABLE",
        default_value = "otel_traces",
        value_name = "NAME"
    )]
    pub table: String,
    /// User.
    #[arg(
        long,
        alias = "clickhouse-user",
        env = "CLICKHOUSE_USER",
        value_name = "USER"
    )]
    pub user: Option<String>,
    /// Password.
    #[arg(
        long,
        alias = "clickhouse-password",
        env = "CLICKHOUSE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// Delete rows older than this many days (TTL on the tables); 0 or absent: keep forever.
    #[arg(long, env = "MCPTAP_TTL_DAYS", value_name = "DAYS")]
    pub ttl_days: Option<u32>,
    /// Cluster mode: ON CLUSTER NAME, ReplicatedMergeTree local tables and Distributed tables.
    #[arg(long, env = "MCPTAP_CLICKHOUSE_CLUSTER", value_name = "NAME")]
    pub cluster: Option<String>,
    /// Apply the NNNN_*.sql files of this directory instead of the embedded ones.
    #[arg(long, value_name = "DIR")]
    pub migrations_dir: Option<PathBuf>,
    /// Print the statements that would run (placeholders substituted) and exit.
    #[arg(long)]
    pub dry_run: bool,
}

/// Export destinations, batching, queue and spool (ClickHouse and OTLP).
#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    /// Write spans to this ClickHouse (HTTP interface), e.g. http://127.0.0.1:8123.
    #[arg(long, env = "CLICKHOUSE_URL", value_name = "URL")]
    pub clickhouse_url: Option<String>,
    /// ClickHouse database of the traces table.
    #[arg(
        long,
        env = "CLICKHOUSE_DATABASE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub clickhouse_database: String,
    /// ClickHouse traces table (the clickhouseexporter's `otel_traces` layout).
    #[arg(
        long,
        env = "MCPTAP_CLICKHOUSE_TABLE",
        default_value = "otel_traces",
        value_name = "NAME"
    )]
    pub clickhouse_table: String,
    /// ClickHouse user (default: the server's default user).
    #[arg(long, env = "CLICKHOUSE_USER", value_name = "USER")]
    pub clickhouse_user: Option<String>,
    /// ClickHouse password.
    #[arg(
        long,
        env = "CLICKHOUSE_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub clickhouse_password: Option<String>,
    /// Time limit of one ClickHouse insert, in seconds.
    #[arg(
        long,
        env = "MCPTAP_CLICKHOUSE_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECONDS"
    )]
    pub clickhouse_timeout: f64,

    /// Send spans to this OTLP endpoint (gRPC: http://host:4317; HTTP: http://host:4318,
    /// `/v1/traces` is appended when the URL has no path). Default:
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// OTLP protocol: `grpc` or `http/protobuf`. Default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    /// else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.
    #[arg(long, value_name = "PROTOCOL", value_parser = ["grpc", "http/protobuf"])]
    pub otlp_protocol: Option<String>,
    /// Extra OTLP request header `key=value` (repeatable, or comma-separated). Default:
    /// OTEL_EXPORTER_OTLP_TRACES_HEADERS, else OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(long, value_name = "KEY=VALUE", value_delimiter = ',')]
    pub otlp_header: Vec<String>,
    /// Time limit of one OTLP export, in milliseconds. Default:
    /// OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT, else 10000.
    #[arg(long, value_name = "MS")]
    pub otlp_timeout: Option<u64>,

    /// Close an export batch at this many spans.
    #[arg(
        long,
        env = "MCPTAP_BATCH_MAX_SPANS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub batch_max_spans: usize,
    /// Close an export batch at this many bytes (estimated encoded size).
    #[arg(long, env = "MCPTAP_BATCH_MAX_BYTES", default_value_t = 2 * 1024 * 1024, value_name = "BYTES")]
    pub batch_max_bytes: usize,
    /// Close an export batch this many seconds after its first span (live capture
    /// only; a pcap replay closes batches by size, so re-running it sends the same batches).
    #[arg(
        long,
        env = "MCPTAP_BATCH_MAX_DELAY",
        default_value_t = 1.0,
        value_name = "SECONDS"
    )]
    pub batch_max_delay: f64,
    /// Batches held in memory per exporter; beyond, the oldest go to the spool
    /// (live capture) or the replay waits (pcap, while the exporter is healthy).
    #[arg(
        long,
        env = "MCPTAP_QUEUE_MAX_BATCHES",
        default_value_t = 32,
        value_name = "N"
    )]
    pub queue_max_batches: usize,
    /// Spool directory (one subdirectory per exporter) for batches that do not fit
    /// in memory or are pending at shutdown; replayed at the next start.
    /// Default: $TMPDIR/mcptap-spool (/tmp/mcptap-spool). In Kubernetes mount an
    /// emptyDir (or a volume) there so it survives container restarts.
    #[arg(long, env = "MCPTAP_SPOOL_DIR", value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// Bytes of spool per exporter; when full, the newest batches are dropped
    /// (counted as `spool_full`). 0 disables the spool.
    #[arg(long, env = "MCPTAP_SPOOL_MAX_BYTES", default_value_t = 256 * 1024 * 1024, value_name = "BYTES")]
    pub spool_max_bytes: u64,
    /// Longest wait between retries of a failing export, in seconds (backoff
    /// starts at 0.1 s and doubles, with jitter).
    #[arg(
        long,
        env = "MCPTAP_RETRY_MAX_DELAY",
        default_value_t = 10.0,
        value_name = "SECONDS"
    )]
    pub retry_max_delay: f64,
    /// At the end of input or on SIGTERM, time given to the exporters to deliver
    /// what they hold, in seconds; the rest stays in the spool for the next run.
    #[arg(
        long,
        env = "MCPTAP_SHUTDOWN_GRACE",
        default_value_t = 10.0,
        value_name = "SECONDS"
    )]
    pub shutdown_grace: f64,
}

/// Options of a capture run (input, decoding, limits, output).
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Read packets from this pcap or pcapng file (replayed as fast as it reads).
    /// `-` reads standard input, e.g. `tcpdump -w - | mcptap-collector --pcap -`;
    /// a FIFO or pipe is decoded as it arrives.
    #[arg(
        long,
        env = "MCPTAP_PCAP",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    pub pcap: Option<PathBuf>,

    /// Capture live on this interface (libpcap). Needs CAP_NET_RAW.
    #[arg(long, short = 'i', env = "MCPTAP_INTERFACE", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Live capture delivery: `buffered` (TPACKET_V3 blocks handed over when full or after
    /// 50 ms; no kernel drops up to ~290k packets/s here) or `immediate` (libpcap immediate
    /// mode: each packet as soon as it arrives, but a ring of fixed-size slots that dropped
    /// 5–23% of packets at 100k–300k packets/s on the same machine; BENCHMARKS.md).
    #[arg(long, env = "MCPTAP_CAPTURE_MODE", default_value = "buffered", value_parser = ["immediate", "buffered"])]
    pub capture_mode: String,

    /// Kernel capture ring size, in bytes.
    #[arg(long, env = "MCPTAP_CAPTURE_BUFFER_BYTES", default_value_t = 32 * 1024 * 1024, value_name = "BYTES")]
    pub capture_buffer_bytes: i32,

    /// BPF filter applied to the capture, e.g. `tcp port 8000`.
    #[arg(long, short = 'f', env = "MCPTAP_FILTER", value_name = "BPF")]
    pub filter: Option<String>,

    /// Stop a live capture after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, env = "MCPTAP_DURATION", value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Span output: `otlp-json` (stdout) or `otlp-json=FILE`: OTLP/JSON, one
    /// ExportTraceServiceRequest per line, as the OpenTelemetry Collector file exporter writes.
    #[arg(
        long,
        short = 'o',
        env = "MCPTAP_OUTPUT",
        value_name = "otlp-json[=FILE]"
    )]
    pub output: Option<String>,

    /// `service.instance.id` of every span; default: `POD_NAME`, else the server `ip:port` of each flow.
    #[arg(long, env = "MCPTAP_INSTANCE_ID", value_name = "ID")]
    pub instance_id: Option<String>,

    /// `service.name` resource attribute.
    #[arg(
        long,
        env = "OTEL_SERVICE_NAME",
        default_value = "mcp-server",
        value_name = "NAME"
    )]
    pub service_name: String,

    /// Which argument and structuredContent keys are handle ids kept in clear:
    /// comma-separated `suffix:S` and `key:K` items.
    #[arg(
        long,
        env = "MCPTAP_HANDLE_RULE",
        default_value = "suffix:_id,suffix:Id,suffix:handle,key:taskId",
        value_name = "RULE"
    )]
    pub handle_rule: String,
    /// Socket peers whose forwarding headers (`Forwarded`, `X-Forwarded-For`,
    /// `X-Real-IP`) and mesh identity headers (`x-forwarded-client-cert`,
    /// `l5d-client-id`) are believed: comma-separated CIDRs or addresses,
    /// `default` (private, loopback and link-local ranges: the usual in-cluster
    /// hops) and `none`. `client.address` is then the first untrusted address
    /// from the right of the chain; `network.peer.address` is always the socket peer
    #[arg(
        long,
        env = "MCPTAP_TRUSTED_PROXIES",
        default_value = "default",
        value_name = "CIDR,..."
    )]
    pub trusted_proxies: mcptap_mcp::TrustedProxies,

    /// Export request and response bodies (size-capped, credentials redacted).
    #[arg(long, env = "MCPTAP_CAPTURE_BODIES")]
    pub capture_bodies: bool,

    /// Cap of each exported body with --capture-bodies, in bytes.
    #[arg(
        long,
        env = "MCPTAP_CAPTURE_BODY_MAX_BYTES",
        default_value_t = 4096,
        value_name = "BYTES"
    )]
    pub capture_body_max_bytes: usize,

    /// HTTP bodies kept per message for decoding, in bytes (the rest is skipped and flagged).
    #[arg(long, env = "MCPTAP_MAX_BODY_BYTES", default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,

    /// TCP connections tracked at once (least recently active evicted beyond).
    #[arg(
        long,
        env = "MCPTAP_MAX_FLOWS",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub max_flows: usize,

    /// Out-of-order bytes buffered per connection direction before a gap is declared.
    #[arg(long, env = "MCPTAP_MAX_FLOW_BUFFER_BYTES", default_value_t = 256 * 1024, value_name = "BYTES")]
    pub max_flow_buffer_bytes: usize,

    /// Out-of-order bytes buffered over all connections.
    #[arg(long, env = "MCPTAP_MAX_BUFFER_BYTES", default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    pub max_buffer_bytes: usize,

    /// Close a connection after this many seconds without packets (capture time).
    #[arg(
        long,
        env = "MCPTAP_IDLE_TIMEOUT",
        default_value_t = 300.0,
        value_name = "SECONDS"
    )]
    pub idle_timeout: f64,

    /// Exchanges awaiting a response, at most (oldest evicted and counted).
    #[arg(
        long,
        env = "MCPTAP_MAX_PENDING",
        default_value_t = 100_000,
        value_name = "N"
    )]
    pub max_pending: usize,

    /// Do not print the summary on stderr at the end.
    #[arg(long, env = "MCPTAP_NO_SUMMARY")]
    pub no_summary: bool,

    /// Export destinations and their queues.
    #[command(flatten)]
    pub export: ExportArgs,

    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this address,
    /// e.g. 0.0.0.0:9464 (off by default).
    #[arg(long, env = "MCPTAP_ADMIN_ADDR", value_name = "ADDR:PORT")]
    pub admin_addr: Option<std::net::SocketAddr>,

    /// Admin server: connections open at once; at the cap a new connection
    /// closes the oldest one.
    #[arg(long, env = "MCPTAP_ADMIN_MAX_CONNECTIONS", default_value_t = 64, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub admin_max_connections: u32,

    /// Admin server: seconds a client has to send a complete request head.
    #[arg(
        long,
        env = "MCPTAP_ADMIN_HEADER_READ_TIMEOUT",
        default_value_t = 5.0,
        value_name = "SECONDS"
    )]
    pub admin_header_read_timeout: f64,

    /// Admin server: seconds without a byte either way before a connection is closed.
    #[arg(
        long,
        env = "MCPTAP_ADMIN_IDLE_TIMEOUT",
        default_value_t = 30.0,
        value_name = "SECONDS"
    )]
    pub admin_idle_timeout: f64,

    /// Log format on stderr.
    #[arg(long, env = "MCPTAP_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}
