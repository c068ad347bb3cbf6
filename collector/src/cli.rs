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
    },
}

/// Options of a capture run (input, decoding, limits, output).
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Read packets from this pcap or pcapng file (replayed as fast as it reads).
    #[arg(
        long,
        env = "MCPTAP_PCAP",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    pub pcap: Option<PathBuf>,

    /// Capture live on this interface (libpcap, immediate mode). Needs CAP_NET_RAW.
    #[arg(long, short = 'i', env = "MCPTAP_INTERFACE", value_name = "IFACE")]
    pub interface: Option<String>,

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

    /// Log format on stderr.
    #[arg(long, env = "MCPTAP_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}
