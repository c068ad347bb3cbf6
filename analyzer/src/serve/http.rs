//! The HTTP/1.1 server of `serve`: hyper's `http1` connection builder over the accepted TCP
//! connections, with every connection bounded in time and number (issue 16: 20k half-open
//! connections took the analyzer past its 256Mi limit and failed its probes).
//!
//! - **Header-read timeout** ([`HttpLimits::header_read_timeout`], hyper's
//!   `http1::Builder::header_read_timeout` on a tokio timer): a request head must be complete
//!   this long after hyper starts waiting for it; otherwise the connection is closed. Hyper
//!   starts that wait when a keep-alive connection falls idle too, so an idle keep-alive
//!   connection is closed after the same time.
//! - **Idle timeout** ([`HttpLimits::idle_timeout`]): a connection that moved no byte in either
//!   direction for this long (a stalled request body, a client that stopped reading its
//!   response) is closed the same way, a graceful one dropped one more idle period later.
//! - **Connection cap** ([`HttpLimits::max_connections`]): at the cap, a new connection evicts
//!   the oldest one (closed at once when no request is being handled on it, else shut down
//!   gracefully so that the request still gets its answer). Slow or half-open clients
//!   therefore cannot lock out new ones such as the kubelet's probes.
//! - **Head size**: the read buffer is capped at [`MAX_BUF_BYTES`] (larger heads: 431), so a
//!   connection holds a few KiB.
//!
//! On SIGINT/SIGTERM the listener stops, open connections are shut down gracefully and given
//! [`SHUTDOWN_GRACE`] to finish.

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;

/// Largest read buffer of a connection, bytes (hyper's minimum is 8 KiB); a request head
/// must fit in it.
pub const MAX_BUF_BYTES: usize = 16 * 1024;

/// How long open connections may take to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Time and number limits of the HTTP server (flags `--header-read-timeout`,
/// `--idle-timeout`, `--max-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to receive a complete request head (also the keep-alive idle time). Default 10 s.
    pub header_read_timeout: Duration,
    /// Time without a byte in either direction before a connection is shut down. Default 60 s.
    pub idle_timeout: Duration,
    /// Most connections served at once; at the cap the oldest is evicted. Default 512.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Milliseconds since the first call (a monotonic clock shared by all connections).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A stream that records the time of its last byte read or written.
struct Tracked {
    inner: TcpStream,
    last_ms: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        self.last_ms.store(now_ms(), Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The open connections by accept order, each with the signal that evicts it.
#[derive(Default)]
struct Slots {
    next_id: u64,
    open: BTreeMap<u64, Arc<Notify>>,
}

impl Slots {
    /// Registers a new connection, evicting the oldest when `cap` are open.
    fn admit(&mut self, cap: usize) -> (u64, Arc<Notify>) {
        while self.open.len() >= cap.max(1) {
            match self.open.pop_first() {
                Some((_, evict)) => evict.notify_one(),
                None => break,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let n = Arc::new(Notify::new());
        self.open.insert(id, n.clone());
        (id, n)
    }
}

/// Resolves once `last_ms` is `idle` old.
async fn idle(last_ms: &AtomicU64, idle: Duration) {
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let since = now_ms().saturating_sub(last_ms.load(Ordering::Relaxed));
        if since >= idle_ms {
            return;
        }
        tokio::time::sleep(Duration::from_millis(idle_ms - since)).await;
    }
}

/// Counts a request in flight on its connection while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection until it ends, is evicted, falls idle or the server shuts down.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    evict: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let last_ms = Arc::new(AtomicU64::new(now_ms()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        last_ms: last_ms.clone(),
    });
    let counter = in_flight.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::new(&counter);
        let router = router.clone();
        async move {
            let r = router.oneshot(req).await;
            drop(busy);
            r
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let why = tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
            return;
        }
        () = evict.notified() => "evicted (connection cap)",
        _ = shutdown.changed() => "server shutdown",
        () = idle(&last_ms, limits.idle_timeout) => "idle",
    };
    tracing::debug!(reason = why, "closing connection");
    if in_flight.load(Ordering::Relaxed) == 0 && why != "server shutdown" {
        return; // nothing being answered: close now (a half-read head is just dropped)
    }
    conn.as_mut().graceful_shutdown();
    let grace = if why == "server shutdown" {
        SHUTDOWN_GRACE
    } else {
        limits.idle_timeout
    };
    let _ = tokio::time::timeout(grace, conn).await;
}

/// Accepts connections on `listener` and serves `router` on each within `limits` until
/// `shutdown` resolves; then waits up to [`SHUTDOWN_GRACE`] for open connections.
/// Accept errors (such as running out of file descriptors) are logged and retried after a
/// short pause, never fatal.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Mutex::new(Slots::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (id, evict) = match slots.lock() {
            Ok(mut g) => g.admit(limits.max_connections),
            Err(_) => continue,
        };
        let (router, stop, slots) = (router.clone(), stop_rx.clone(), slots.clone());
        tasks.spawn(async move {
            connection(stream, router, limits, evict, stop).await;
            if let Ok(mut g) = slots.lock() {
                g.open.remove(&id);
            }
        });
        // Reap finished tasks so the set stays as small as the open connections.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_evicts_the_oldest_at_the_cap() {
        let mut s = Slots::default();
        let (a, _) = s.admit(2);
        let (b, _) = s.admit(2);
        let (c, _) = s.admit(2);
        assert_eq!(s.open.keys().copied().collect::<Vec<_>>(), [b, c]);
        assert!(a < b && b < c);
        s.open.remove(&b);
        let (d, _) = s.admit(2);
        assert_eq!(s.open.keys().copied().collect::<Vec<_>>(), [c, d]);
    }
}
