//! What a `mcptap-collector` invocation does: open the source, build the
//! pipeline and sinks from the flags, run until the input ends, print the summary.

use crate::admin::AdminState;
use crate::cli::{ExportArgs, RunArgs, SchemaArgs};
use crate::export::clickhouse::{ClickHouseConfig, ClickHouseExporter};
use crate::export::otlp::{OtlpConfig, OtlpExporter, OtlpFlags};
use crate::export::queue::{Overflow, Queue, QueueConfig, QueueReport};
use crate::export::sink::{BatchConfig, ExportSink};
use crate::export::{ExportCounters, ExportError};
use crate::metrics::CaptureSnapshot;
use crate::otlp_json::{OtlpJsonSink, ResourceInfo};
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
            trusted_proxies: args.trusted_proxies.clone(),
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
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            extra.push((key.to_owned(), v));
        }
    }
    ResourceInfo {
        service_name: args.service_name.clone(),
        extra,
    }
}

fn make_sink(output: Option<&str>, resource: ResourceInfo) -> Result<Option<Box<dyn SpanSink>>> {
    match output {
        None => Ok(None),
        Some("otlp-json") | Some("otlp-json=-") => Ok(Some(Box::new(OtlpJsonSink::new(
            BufWriter::new(std::io::stdout()),
            resource,
        )))),
        Some(o) if o.starts_with("otlp-json=") => {
            let path = &o["otlp-json=".len()..];
            let f = std::fs::File::create(path)
                .with_context(|| format!("--output: cannot create {path}"))?;
            Ok(Some(Box::new(OtlpJsonSink::new(
                BufWriter::new(f),
                resource,
            ))))
        }
        Some(o) => bail!("--output: unknown output {o:?} (expected otlp-json or otlp-json=FILE)"),
    }
}

/// Every destination of a run: the file output (`--output`) and the export
/// queues (ClickHouse, OTLP) with the tokio runtime they run on. Built by
/// [`Outputs::new`]; [`SpanSink::finish`] flushes the file and shuts the queues
/// down within `--shutdown-grace`.
pub struct Outputs {
    file: Option<Box<dyn SpanSink>>,
    export: Option<ExportSink>,
    rt: Option<tokio::runtime::Runtime>,
    grace: Duration,
    counters: Vec<Arc<ExportCounters>>,
    reports: Vec<QueueReport>,
}

fn secs(flag: &str, v: f64) -> Result<Duration> {
    if !(v.is_finite() && v >= 0.0) {
        bail!("{flag} must be a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

/// The OTLP exporter settings from the flags and the standard
/// `OTEL_EXPORTER_OTLP_*` variables (resolved by [`OtlpConfig::from_flags`]);
/// `None` when no endpoint is configured.
/// Errors: an unknown protocol, a malformed endpoint, header or timeout.
pub fn otlp_config(ea: &ExportArgs, resource: &ResourceInfo) -> Result<Option<OtlpConfig>> {
    let flags = OtlpFlags {
        endpoint: ea.otlp_endpoint.as_deref(),
        protocol: ea.otlp_protocol.as_deref(),
        headers: &ea.otlp_header,
        timeout: ea.otlp_timeout.map(|ms| Duration::from_millis(ms.max(1))),
    };
    OtlpConfig::from_flags(&flags, resource.clone())
}

impl Outputs {
    /// Builds the file output and the exporters of `args`. A tokio runtime
    /// (2 worker threads) is started only when an exporter is configured.
    /// `live`: the capture must never wait (queues spill instead of blocking).
    /// Errors: bad flags, a spool directory that cannot be used, an exporter
    /// whose configuration the destination rejects at start-up (credentials,
    /// missing table).
    pub fn new(args: &RunArgs, live: bool) -> Result<Outputs> {
        let resource = resource_info(args);
        let file = make_sink(args.output.as_deref(), resource.clone())?;
        let ea = &args.export;
        let otlp = otlp_config(ea, &resource)?;
        let grace = secs("--shutdown-grace", ea.shutdown_grace)?;
        if ea.clickhouse_url.is_none() && otlp.is_none() {
            let rt = match args.admin_addr {
                Some(_) => Some(
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("mcptap-admin")
                        .enable_all()
                        .build()
                        .context("starting the admin runtime")?,
                ),
                None => None,
            };
            return Ok(Outputs {
                file,
                export: None,
                rt,
                grace,
                counters: Vec::new(),
                reports: Vec::new(),
            });
        }
        if ea.batch_max_spans == 0 || ea.queue_max_batches == 0 {
            bail!("--batch-max-spans and --queue-max-batches must be at least 1");
        }
        let batch = BatchConfig {
            max_spans: ea.batch_max_spans,
            max_bytes: ea.batch_max_bytes.max(1),
            max_delay: if live {
                Some(secs("--batch-max-delay", ea.batch_max_delay)?)
            } else {
                None
            },
        };
        let retry_max =
            secs("--retry-max-delay", ea.retry_max_delay)?.max(Duration::from_millis(100));
        let spool_root = ea
            .spool_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("mcptap-spool"));
        let qcfg = |name: &str| QueueConfig {
            max_batches: ea.queue_max_batches,
            overflow: if live {
                Overflow::Spill
            } else {
                Overflow::Block
            },
            spool: (ea.spool_max_bytes > 0).then(|| (spool_root.join(name), ea.spool_max_bytes)),
            retry_initial: Duration::from_millis(100),
            retry_max,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mcptap-export")
            .enable_all()
            .build()
            .context("starting the export runtime")?;
        let mut queues = Vec::new();
        if let Some(url) = &ea.clickhouse_url {
            let cfg = ClickHouseConfig {
                url: url.clone(),
                database: ea.clickhouse_database.clone(),
                table: ea.clickhouse_table.clone(),
                user: ea.clickhouse_user.clone(),
                password: ea.clickhouse_password.clone(),
                timeout: secs("--clickhouse-timeout", ea.clickhouse_timeout)?
                    .max(Duration::from_millis(100)),
            };
            crate::schema::check_identifier("--clickhouse-database", &cfg.database)?;
            crate::schema::check_identifier("--clickhouse-table", &cfg.table)?;
            let exp = ClickHouseExporter::new(cfg, resource.clone())?;
            match rt.block_on(exp.probe()) {
                Ok(()) => tracing::info!(url = %url, "ClickHouse reachable, table present"),
                Err(ExportError::Fatal(m)) => bail!("ClickHouse at {url}: {m}"),
                Err(ExportError::Retryable(m)) => tracing::warn!(
                    url = %url,
                    error = %m,
                    "ClickHouse not reachable now; spans are queued and spooled until it is"
                ),
            }
            let q = Queue::start(
                exp,
                qcfg("clickhouse"),
                Arc::new(ExportCounters::new("clickhouse")),
                rt.handle(),
            )
            .with_context(|| format!("spool {}", spool_root.join("clickhouse").display()))?;
            queues.push(q);
        }
        if let Some(oc) = otlp {
            let endpoint = oc.endpoint.clone();
            let exp = rt
                .block_on(OtlpExporter::new(oc))
                .with_context(|| format!("OTLP exporter for {endpoint}"))?;
            let q = Queue::start(
                exp,
                qcfg("otlp"),
                Arc::new(ExportCounters::new("otlp")),
                rt.handle(),
            )
            .with_context(|| format!("spool {}", spool_root.join("otlp").display()))?;
            queues.push(q);
        }
        let export = ExportSink::new(queues, batch);
        Ok(Outputs {
            file,
            counters: export.counters(),
            export: Some(export),
            rt: Some(rt),
            grace,
            reports: Vec::new(),
        })
    }

    /// Counters of every exporter (for `/metrics`), in exporter order.
    pub fn counters(&self) -> &[Arc<ExportCounters>] {
        &self.counters
    }

    /// The export runtime, when an exporter is configured.
    pub fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.rt.as_ref()
    }

    /// Closes an export batch that has waited `--batch-max-delay` (live capture).
    pub fn poll(&mut self, now: Instant) {
        if let Some(e) = self.export.as_mut() {
            e.poll(now);
        }
    }

    /// Prints one line per exporter on stderr (after the run) and tells whether
    /// everything queued was delivered (nothing dropped, nothing left in a spool).
    pub fn report(&self) -> bool {
        let mut ok = true;
        for c in &self.counters {
            eprintln!("mcptap-collector: export {}", c.summary_line());
            let rep = self.reports.iter().find(|r| r.exporter == c.exporter);
            let left = rep.map_or(0, |r| r.spool_batches);
            let dropped = c.dropped_total();
            if left > 0 || dropped > 0 {
                ok = false;
                let mut msg = format!(
                    "mcptap-collector: export {}: NOT everything was delivered:",
                    c.exporter
                );
                if dropped > 0 {
                    msg.push_str(&format!(" {dropped} spans dropped;"));
                }
                if let Some(r) = rep.filter(|r| r.spool_batches > 0) {
                    msg.push_str(&format!(
                        " {} batches ({} bytes) kept in the spool {} for the next run;",
                        r.spool_batches,
                        r.spool_bytes,
                        r.spool_dir
                            .as_deref()
                            .map(Path::display)
                            .map(|d| d.to_string())
                            .unwrap_or_default()
                    ));
                }
                if let Some(e) = c.last_error() {
                    msg.push_str(&format!(" last error: {e}"));
                }
                eprintln!("{msg}");
            }
        }
        ok
    }
}

impl SpanSink for Outputs {
    fn export(&mut self, spans: &mut Vec<mcptap_mcp::Span>) -> Result<()> {
        match (self.file.as_mut(), self.export.as_mut()) {
            (Some(f), Some(e)) => {
                f.export(&mut spans.clone())?;
                e.export(spans)
            }
            (Some(f), None) => f.export(spans),
            (None, Some(e)) => e.export(spans),
            (None, None) => {
                spans.clear();
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.finish()?;
        }
        if let (Some(e), Some(rt)) = (self.export.take(), self.rt.as_ref()) {
            self.reports = rt.block_on(e.shutdown(self.grace));
        }
        Ok(())
    }
}

/// `mcptap-collector schema`: applies the migrations (see [`crate::schema`]).
pub fn schema(a: &SchemaArgs) -> Result<ExitCode> {
    let opts = crate::schema::SchemaOptions {
        conn: ClickHouseConfig {
            url: a.clickhouse_url.clone(),
            database: a.database.clone(),
            table: a.table.clone(),
            user: a.user.clone(),
            password: a.password.clone(),
            timeout: Duration::from_secs(60),
        },
        params: crate::schema::SchemaParams {
            database: a.database.clone(),
            table: a.table.clone(),
            ttl_days: a.ttl_days,
            cluster: a.cluster.clone(),
        },
        migrations_dir: a.migrations_dir.clone(),
        dry_run: a.dry_run,
    };
    crate::schema::run(&opts)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the collector per `args`. Exit code: 0; 3 if the input was damaged;
/// 4 if an exporter could not deliver everything (spans dropped, or left in
/// the spool for the next run).
pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let cfg = pipeline_config(args)?;
    let source = match (&args.pcap, &args.interface) {
        (Some(p), None) => Source::open_file(p)?,
        (None, Some(i)) => Source::open_live(
            i,
            args.filter.as_deref(),
            args.capture_mode == "immediate",
            args.capture_buffer_bytes,
        )?,
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
    let mut outputs = Outputs::new(args, source.is_live())?;
    let admin = match (args.admin_addr, outputs.runtime()) {
        (Some(addr), Some(rt)) => {
            let state = AdminState::new();
            for c in outputs.counters() {
                state.add_exporter(Arc::clone(c));
            }
            let limits = crate::admin::AdminLimits::from_flags(
                args.admin_max_connections,
                args.admin_header_read_timeout,
                args.admin_idle_timeout,
            )?;
            let server = rt.block_on(crate::admin::serve_with(addr, Arc::clone(&state), limits))?;
            state.set_ready();
            Some((state, server))
        }
        _ => None,
    };
    let code = drive(
        source,
        cfg,
        &mut outputs,
        args,
        file_len,
        admin.as_ref().map(|(s, _)| s.as_ref()),
    )?;
    if let (Some((_, server)), Some(rt)) = (admin, outputs.runtime()) {
        rt.block_on(server.stop());
    }
    let delivered = outputs.report();
    if code == ExitCode::SUCCESS && !delivered {
        return Ok(ExitCode::from(4));
    }
    Ok(code)
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
    sink: &mut Outputs,
    args: &RunArgs,
    file_len: Option<u64>,
    admin: Option<&AdminState>,
) -> Result<ExitCode> {
    let started = Instant::now();
    let mut pipeline = Pipeline::new(source.link_type(), cfg);
    let stop = Arc::new(AtomicBool::new(false));
    if source.is_live() || sink.export.is_some() {
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
    let mut last_publish = Instant::now()
        .checked_sub(Duration::from_secs(2))
        .unwrap_or_else(Instant::now);
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match source.next_packet() {
            Ok(Some(p)) => {
                let (ts, data) = (p.ts, p.data);
                pipeline.packet(ts, data, sink)?;
                n += 1;
                // (4096 is a multiple of 1024: one test per packet for both.)
                if n.is_multiple_of(1024) {
                    sink.poll(Instant::now());
                    if let Some(a) = admin {
                        publish(a, &pipeline, &mut source, &mut last_publish);
                    }
                    if let Some(b) = &bar
                        && n.is_multiple_of(4096)
                    {
                        b.set_position(source.bytes_read());
                    }
                }
                idle_wait = Duration::from_micros(100);
            }
            Ok(None) => {
                // Nothing ready on a live capture: back off up to 10 ms, expire idle flows.
                std::thread::sleep(idle_wait);
                idle_wait = (idle_wait * 2).min(Duration::from_millis(10));
                pipeline.tick(now_ns(), sink)?;
                sink.poll(Instant::now());
                if let Some(a) = admin {
                    publish(a, &pipeline, &mut source, &mut last_publish);
                }
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
    if let Some(a) = admin {
        a.set_shutting_down();
    }
    pipeline.finish(sink)?;
    if let Some(a) = admin {
        a.publish_capture(CaptureSnapshot::from_pipeline(
            &pipeline.stats(),
            source.kernel_stats(),
        ));
    }
    let kernel = source.kernel_stats();
    if !args.no_summary {
        summary::print(&pipeline.stats(), kernel, started.elapsed());
    }
    Ok(exit)
}

/// Publishes the capture counters to the admin server at most once a second.
fn publish(a: &AdminState, pipeline: &Pipeline, source: &mut Source, last: &mut Instant) {
    if last.elapsed() >= Duration::from_secs(1) {
        *last = Instant::now();
        a.publish_capture(CaptureSnapshot::from_pipeline(
            &pipeline.stats(),
            source.kernel_stats(),
        ));
    }
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
        match source.next_packet() {
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
