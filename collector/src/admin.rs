//! The admin HTTP server (`--admin-addr`): `/metrics`, `/healthz`, `/readyz`,
//! and [`shutdown_signal`] for graceful shutdown.
//!
//! - `GET /metrics`: Prometheus text format 0.0.4 ([`crate::metrics`], rendered by
//!   the `prometheus-client` crate).
//! - `GET /healthz`: `200 ok` while the process runs (liveness).
//! - `GET /readyz`: `200 ready` once [`AdminState::set_ready`] was called (capture
//!   open, exporters built) and until [`AdminState::set_shutting_down`];
//!   `503` with the reason otherwise (readiness: Kubernetes stops routing and
//!   the rollout waits).
//!
//! The capture thread publishes a [`CaptureSnapshot`] about once a second with
//! [`AdminState::publish_capture`] (its counters are plain integers owned by
//! that thread); export counters are shared atomics read at scrape time.
//!
//! The server runs on the tokio runtime it is started from and never touches the
//! capture thread: a slow scraper cannot stall packet processing. It speaks
//! HTTP/1.1 through hyper with its own accept loop, so every connection is
//! bounded ([`AdminLimits`]: a connection cap, header-read and idle timeouts,
//! an 8 KiB head cap); axum only routes.

use crate::export::ExportCounters;
use crate::metrics::{self, CaptureSnapshot, MetricsSource};
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the admin endpoints report. Shared (`Arc`) between the capture thread,
/// the export queues and the server.
#[derive(Debug)]
pub struct AdminState {
    source: Arc<MetricsSource>,
    registry: Registry,
    ready: AtomicBool,
    shutting_down: AtomicBool,
}

impl Default for AdminState {
    fn default() -> Self {
        let source = Arc::new(MetricsSource::default());
        AdminState {
            registry: metrics::registry(Arc::clone(&source)),
            source,
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        }
    }
}

impl AdminState {
    /// Not ready, no counters yet.
    pub fn new() -> Arc<AdminState> {
        Arc::new(AdminState::default())
    }

    /// Replaces the capture counters (call from the capture thread about once a
    /// second, and once at the end of input).
    pub fn publish_capture(&self, snapshot: CaptureSnapshot) {
        self.source.publish_capture(snapshot);
    }

    /// Adds an exporter's counters to `/metrics` (once per exporter).
    pub fn add_exporter(&self, counters: Arc<ExportCounters>) {
        self.source.add_exporter(counters);
    }

    /// Marks the collector ready: capture open and exporters constructed.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Marks the collector as shutting down: `/readyz` answers 503 from now on
    /// (`/metrics` keeps serving while the queues drain).
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// `Ok(())` when ready, else why not (`starting` or `shutting down`).
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::SeqCst) {
            Err("shutting down")
        } else if !self.ready.load(Ordering::SeqCst) {
            Err("starting")
        } else {
            Ok(())
        }
    }

    /// The admin server's connection counters (shown on `/metrics`).
    pub fn admin_counters(&self) -> &metrics::AdminCounters {
        &self.source.admin
    }

    /// The `/metrics` body (Prometheus text format 0.0.4, rendered by
    /// prometheus-client from the published counters). Errors: only if
    /// encoding fails, which a `String` writer does not.
    pub fn render_metrics(&self) -> Result<String, std::fmt::Error> {
        metrics::encode(&self.registry)
    }
}

async fn metrics_handler(State(st): State<Arc<AdminState>>) -> axum::response::Response {
    match st.render_metrics() {
        Ok(body) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response(),
        Err(_) => {
            tracing::warn!("/metrics: encoding failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "metrics encoding failed\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<Arc<AdminState>>) -> (StatusCode, String) {
    match st.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// The routes, for embedding or tests.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Connection limits of the admin server: every connection is bounded in time
/// and their number is capped, so a flood of slow or idle connections
/// (slowloris) costs a bounded amount of memory and `/healthz` keeps answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    /// Connections open at once (at least 1). At the cap, a new connection
    /// closes the oldest open one: a flood cannot lock probes and scrapes out,
    /// and those finish in milliseconds. Default 64.
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from the start of
    /// the connection or of the wait for the next request on a keep-alive
    /// connection (hyper's `http1::Builder::header_read_timeout`). Default 5 s.
    pub header_read_timeout: Duration,
    /// A connection that moved no byte either way for this long is closed
    /// (keep-alive connections, clients that stop reading). Default 30 s.
    pub idle_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl AdminLimits {
    /// From the `--admin-max-connections`, `--admin-header-read-timeout` and
    /// `--admin-idle-timeout` flags (seconds). Errors: a timeout that is not a
    /// positive, finite number of seconds, naming the flag.
    pub fn from_flags(max_connections: u32, header_read_s: f64, idle_s: f64) -> Result<Self> {
        let secs = |flag: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("{flag} {v}: must be a positive number of seconds"))
        };
        Ok(AdminLimits {
            max_connections: usize::try_from(max_connections.max(1)).unwrap_or(usize::MAX),
            header_read_timeout: secs("--admin-header-read-timeout", header_read_s)?,
            idle_timeout: secs("--admin-idle-timeout", idle_s)?,
        })
    }
}

/// Largest request head read (hyper's buffer cap per connection; hyper's
/// minimum). A longer head is answered `431` and the connection closed.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// How long [`AdminServer::stop`] lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running admin server.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl AdminServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), and
    /// waits for the server.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "admin server task");
        }
    }
}

/// [`serve_with`] with the default [`AdminLimits`].
pub async fn serve(addr: SocketAddr, state: Arc<AdminState>) -> Result<AdminServer> {
    serve_with(addr, state, AdminLimits::default()).await
}

/// Binds `addr` and serves the admin routes on the current tokio runtime,
/// HTTP/1.1 only, within `limits`.
/// Errors: `limits` out of range (a zero cap or timeout), or the address cannot
/// be bound (in use, not local, no permission), with the address in the message.
pub async fn serve_with(
    addr: SocketAddr,
    state: Arc<AdminState>,
    limits: AdminLimits,
) -> Result<AdminServer> {
    anyhow::ensure!(
        limits.max_connections > 0
            && !limits.header_read_timeout.is_zero()
            && !limits.idle_timeout.is_zero(),
        "admin server: the connection cap and the timeouts must be positive ({limits:?})"
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--admin-addr {addr}: cannot listen"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("--admin-addr {addr}"))?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(listener, state, limits, rx));
    tracing::info!(%addr, ?limits, "admin server: /metrics /healthz /readyz");
    Ok(AdminServer {
        addr,
        stop: Some(tx),
        task,
    })
}

/// The open connections, oldest first (ids grow with each accept), each with
/// the sender that closes it.
type Open = Arc<Mutex<BTreeMap<u64, oneshot::Sender<()>>>>;

/// Accepts until `stop`, one task per connection; at the cap the oldest
/// connection is closed to make room. Then waits for in-flight requests
/// (at most [`SHUTDOWN_GRACE`]).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<AdminState>,
    limits: AdminLimits,
    mut stop: oneshot::Receiver<()>,
) {
    let app = router(Arc::clone(&state));
    let open: Open = Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    for id in 0u64.. {
        let stream = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "admin server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let closed = admit(&open, id, limits.max_connections);
        let activity = Activity::new();
        let io = hyper_util::rt::TokioIo::new(Tracked {
            io: stream,
            activity: Arc::clone(&activity),
        });
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(io, svc));
        let open = Arc::clone(&open);
        let idle = limits.idle_timeout;
        let state = Arc::clone(&state);
        let counters = state.admin_counters();
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        counters.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let counters = state.admin_counters();
            let closed_by = tokio::select! {
                r = conn => match r {
                    Err(e) if e.is_timeout() => Some(&counters.closed_header_read_timeout),
                    Err(e) => {
                        tracing::debug!(error = %e, "admin connection");
                        None
                    }
                    Ok(()) => None,
                },
                _ = closed => Some(&counters.closed_max_connections),
                _ = activity.idle_for(idle) => Some(&counters.closed_idle_timeout),
            };
            if let Some(c) = closed_by {
                c.fetch_add(1, Ordering::Relaxed);
            }
            counters.open.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut g) = open.lock() {
                g.remove(&id);
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("admin server: connections still open after the shutdown grace");
    }
}

/// Registers connection `id`, first closing the oldest ones while `max` are
/// open; the receiver resolves when `id` is closed that way.
fn admit(open: &Open, id: u64, max: usize) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    if let Ok(mut g) = open.lock() {
        while g.len() >= max {
            match g.pop_first() {
                Some((_, oldest)) => {
                    let _ = oldest.send(());
                }
                None => break,
            }
        }
        g.insert(id, tx);
    }
    rx
}

/// When a connection last moved a byte (ms since `start`).
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.start + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// A TCP stream that records its last read or write in an [`Activity`].
struct Tracked {
    io: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C) and returns its name.
/// If the handlers cannot be installed, logs it and waits for Ctrl-C only.
pub async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot install SIGTERM/SIGINT handlers; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
