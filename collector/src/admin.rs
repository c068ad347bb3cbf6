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
//! capture thread: a slow scraper cannot stall packet processing.

use crate::export::ExportCounters;
use crate::metrics::{self, CaptureSnapshot, MetricsSource};
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A running admin server.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, finishes in-flight requests, and waits for the server.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin server"),
            Err(e) => tracing::warn!(error = %e, "admin server task"),
            Ok(Ok(())) => {}
        }
    }
}

/// Binds `addr` and serves the admin routes on the current tokio runtime.
/// Errors: the address cannot be bound (in use, not local, no permission),
/// with the address in the message.
pub async fn serve(addr: SocketAddr, state: Arc<AdminState>) -> Result<AdminServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--admin-addr {addr}: cannot listen"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("--admin-addr {addr}"))?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    tracing::info!(%addr, "admin server: /metrics /healthz /readyz");
    Ok(AdminServer {
        addr,
        stop: Some(tx),
        task,
    })
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
