//! What a `mcptap-collector` invocation does: open the source, build the
//! pipeline and sinks from the flags, run until the input ends, print the summary.

use crate::cli::RunArgs;
use crate::otlp_json::{NullSink, OtlpJsonSink, ResourceInfo};
use crate::pipeline::{Pipeline, PipelineConfig, SpanSink};
use crate::source::{End, Source};
use crate::summary;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mcptap_mcp::{DecoderConfig, HandleRule};
use mcptap_wire::conn::HttpConfig;
use mcptap_wire::tcp::TcpConfig;
use std::io::{BufWriter, IsTerminal};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Installs the `tracing` subscriber on stderr (`text` or `json`), level from `RUST_LOG` (default info).
pub fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

/// Decoder, HTTP and TCP settings from the flags and the environment.
pub fn pipeline_config(args: &RunArgs) -> Result<PipelineConfig> {
    let instance_id = args
        .instance_id
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()));
    let handle_rule =
        HandleRule::parse(&args.handle_rule).map_err(|e| anyhow::anyhow!("--handle-rule: {e}"))?;
    if !(args.idle_timeout > 0.0 && args.idle_timeout.is_finite()) {
        bail!("--idle-timeout must be a positive number of seconds");
    }
    if args.max_flows == 0 {
        bail!("--max-flows must be at least 1");
    }
    Ok(PipelineConfig {
        tcp: TcpConfig {
            max_flows: args.max_flows,
            max_buffered_bytes_per_dir: args.max_flow_buffer_bytes,
            max_buffered_bytes_total: args.max_buffer_bytes,
            idle_timeout_ns: (args.idle_timeout * 1e9) as u64,
        },
        http: HttpConfig {
            max_body_bytes: args.max_body_bytes,
            ..HttpConfig::default()
        },
        mcp: DecoderConfig {
            instance_id,
            handle_rule,
            capture_bodies: args.capture_bodies,
            capture_body_max_bytes: args.capture_body_max_bytes,
            max_pending: args.max_pending,
            ..DecoderConfig::default()
        },
    })
}

/// Resource attributes: `service.name` plus the Kubernetes downward-API variables
/// `POD_NAME`, `POD_NAMESPACE`, `NODE_NAME` when set.
pub fn resource_info(args: &RunArgs) -> ResourceInfo {
    let mut extra = Vec::new();
    for (var, key) in [
        ("POD_NAME", "k8s.pod.name"),
        ("POD_NAMESPACE", "k8s.namespace.name"),
        ("NODE_NAME", "k8s.node.name"),
    ] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                extra.push((key.to_owned(), v));
            }
        }
    }
    ResourceInfo {
        service_name: args.service_name.clone(),
        extra,
    }
}

fn make_sink(output: Option<&str>, resource: ResourceInfo) -> Result<Box<dyn SpanSink>> {
    match output {
        None => Ok(Box::new(NullSink)),
        Some("otlp-json") | Some("otlp-json=-") => Ok(Box::new(OtlpJsonSink::new(
            BufWriter::new(std::io::stdout()),
            resource,
        ))),
        Some(o) if o.starts_with("otlp-json=") => {
            let path = &o["otlp-json=".len()..];
            let f = std::fs::File::create(path)
                .with_context(|| format!("--output: cannot create {path}"))?;
            Ok(Box::new(OtlpJsonSink::new(BufWriter::new(f), resource)))
        }
        Some(o) => bail!("--output: unknown output {o:?} (expected otlp-json or otlp-json=FILE)"),
    }
}

/// Runs the collector per `args`; the exit code is 0 unless the input was damaged (3).
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let cfg = pipeline_config(args)?;
    let mut sink = make_sink(args.output.as_deref(), resource_info(args))?;
    let source = match (&args.pcap, &args.interface) {
        (Some(p), None) => Source::open_file(p)?,
        (None, Some(i)) => Source::open_live(i, args.filter.as_deref())?,
        (None, None) => bail!(
            "nothing to read: give --pcap FILE or --interface IFACE (or try `mcptap-collector demo`)"
        ),
        (Some(_), Some(_)) => bail!("--pcap and --interface exclude each other"),
    };
    if args.filter.is_some() && args.pcap.is_some() {
        tracing::warn!("--filter applies to live captures only; ignored for --pcap");
    }
    let file_len = args
        .pcap
        .as_deref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.len());
    drive(source, cfg, sink.as_mut(), args, file_len)
}

/// Replays the bundled capture (`tests/fixtures/cutover.pcap`, embedded in the binary).
pub fn demo(args: &RunArgs, output: Option<String>) -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("mcptap-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("cutover.pcap");
    std::fs::write(&path, crate::DEMO_PCAP)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut a = args.clone();
    a.pcap = Some(path.clone());
    a.interface = None;
    a.output = output;
    eprintln!(
        "mcptap-collector demo: replaying the bundled capture (real MCP SDK traffic, {} bytes)",
        crate::DEMO_PCAP.len()
    );
    let res = run(&a);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn drive(
    mut source: Source,
    cfg: PipelineConfig,
    sink: &mut dyn SpanSink,
    args: &RunArgs,
    file_len: Option<u64>,
) -> Result<ExitCode> {
    let started = Instant::now();
    let mut pipeline = Pipeline::new(source.link_type(), cfg);
    let stop = Arc::new(AtomicBool::new(false));
    if source.is_live() {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, Arc::clone(&stop))
                .context("installing signal handler")?;
        }
    }
    let deadline = args
        .duration
        .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let bar = match file_len {
        Some(len) if std::io::stderr().is_terminal() && !source.is_live() => {
            let b = ProgressBar::new(len);
            b.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(b)
        }
        _ => None,
    };
    let mut exit = ExitCode::SUCCESS;
    let mut n: u64 = 0;
    let mut idle_wait = Duration::from_micros(100);
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match source.next() {
            Ok(Some(p)) => {
                let (ts, data) = (p.ts, p.data);
                pipeline.packet(ts, data, sink)?;
                n += 1;
                idle_wait = Duration::from_micros(100);
                if let Some(b) = &bar {
                    if n % 4096 == 0 {
                        b.set_position(source.bytes_read());
                    }
                }
            }
            Ok(None) => {
                // Nothing ready on a live capture: back off up to 10 ms, expire idle flows.
                std::thread::sleep(idle_wait);
                idle_wait = (idle_wait * 2).min(Duration::from_millis(10));
                pipeline.tick(now_ns(), sink)?;
            }
            Err(End::Done) => break,
            Err(End::Truncated {
                packets,
                offset,
                message,
            }) => {
                let name = args
                    .pcap
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "capture".into());
                eprintln!(
                    "mcptap-collector: {name}: capture damaged at byte offset {offset} after {packets} packets ({message}); \
                     everything before it was decoded"
                );
                exit = ExitCode::from(3);
                break;
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    pipeline.finish(sink)?;
    let kernel = source.kernel_stats();
    if !args.no_summary {
        summary::print(&pipeline.stats(), kernel, started.elapsed());
    }
    Ok(exit)
}

/// Decodes a whole capture file into spans in memory (tests and tools).
/// Errors: the file cannot be opened or is not a capture; a damaged tail is
/// reported as `Ok` with `truncated = Some((packets, offset))`.
pub fn decode_file(path: &Path, cfg: PipelineConfig) -> Result<DecodedFile> {
    let mut source = Source::open_file(path)?;
    let mut pipeline = Pipeline::new(source.link_type(), cfg);
    let mut sink = crate::pipeline::VecSink::default();
    let mut truncated = None;
    loop {
        match source.next() {
            Ok(Some(p)) => {
                let (ts, data) = (p.ts, p.data);
                pipeline.packet(ts, data, &mut sink)?;
            }
            Ok(None) => {}
            Err(End::Done) => break,
            Err(End::Truncated {
                packets, offset, ..
            }) => {
                truncated = Some((packets, offset));
                break;
            }
        }
    }
    pipeline.finish(&mut sink)?;
    let summary = summary::render(&pipeline.stats(), None, Duration::ZERO);
    Ok(DecodedFile {
        spans: sink.spans,
        truncated,
        summary,
    })
}

/// Result of [`decode_file`].
pub struct DecodedFile {
    /// Every span, in completion order.
    pub spans: Vec<mcptap_mcp::Span>,
    /// `(packets read, byte offset)` when the file was cut or corrupt.
    pub truncated: Option<(u64, u64)>,
    /// The end-of-run summary text.
    pub summary: String,
}
