//! One exporter's queue: bounded memory, on-disk spool, one worker task that
//! exports batches one at a time, in order, with retries.
//!
//! Semantics (see also `docs/export.md`-style notes in the CLI help):
//!
//! - **Order.** Every batch gets a sequence number when queued. The spool always
//!   holds the *oldest* pending batches and memory the newest, so the worker
//!   takes from the spool first (oldest file), then from memory, and batches
//!   reach the destination in queue order. A batch in flight is retried until it
//!   succeeds or fails fatally before the next one is taken.
//! - **Memory full** (`max_batches` batches waiting): with [`Overflow::Spill`]
//!   (live capture: the capture thread never waits) the oldest in-memory batch
//!   moves to the spool and the new batch takes its place. With
//!   [`Overflow::Block`] (pcap replay) the caller waits for room while the
//!   exporter is healthy, and spills like `Spill` while it is failing (so a
//!   replay against a dead destination still ends).
//! - **Spool full** (`--spool-max-bytes`): the *newest* batch (the one being
//!   queued) is dropped and counted as `spool_full`; everything older stays, so
//!   the stream has one hole at its end instead of holes everywhere. Without a
//!   spool, the newest batch is dropped as `queue_full`.
//! - **Errors.** [`ExportError::Retryable`]: retried with exponential backoff
//!   (100 ms doubling to `retry_max`, jitter 50–100 %), counted in `retried`;
//!   the exporter is marked down (`up` = 0) until an attempt succeeds.
//!   [`ExportError::Fatal`]: the batch is dropped (`fatal`), the error logged at
//!   ERROR with its text (e.g. `Code: 516 ... AUTHENTICATION_FAILED`), and the
//!   queue goes on with the next batch.
//! - **Shutdown.** [`Queue::close`] sets a deadline (`--shutdown-grace`); the
//!   worker keeps exporting until the queue is empty or the deadline passes, then
//!   writes the batch in flight and every in-memory batch to the spool (in
//!   order), from where the next run replays them. What cannot be spooled is
//!   counted as `shutdown` drops.
//! - **Restart.** Spool files left by a previous run are replayed first; the
//!   sequence continues after the newest one. A batch sent just before a crash
//!   whose file was not yet deleted is sent again; [`Batch::token`] makes the
//!   destination discard the duplicate.

use super::spool::{Spool, SpoolError};
use super::{Batch, DropReason, ExportCounters, ExportError, Exporter};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What [`Queue::push`] does when memory is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Spill the oldest in-memory batch to the spool; never wait (live capture).
    Spill,
    /// Wait for room while the exporter is healthy; spill while it is failing
    /// (pcap replay: the input can wait).
    Block,
}

/// Settings of one queue.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Batches held in memory, at least 1 (`--queue-max-batches`).
    pub max_batches: usize,
    /// Behaviour when memory is full.
    pub overflow: Overflow,
    /// Spool directory of this exporter and its byte bound; `None`: no spool.
    pub spool: Option<(PathBuf, u64)>,
    /// First retry delay (then doubled each attempt).
    pub retry_initial: Duration,
    /// Longest retry delay (`--retry-max-delay`).
    pub retry_max: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_batches: 32,
            overflow: Overflow::Spill,
            spool: None,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
        }
    }
}

struct Item {
    seq: u64,
    batch: Arc<Batch>,
}

struct Job {
    seq: u64,
    batch: Arc<Batch>,
    from_spool: bool,
}

struct State {
    mem: VecDeque<Item>,
    spool: Option<Spool>,
    next_seq: u64,
    closed: bool,
    deadline: Option<Instant>,
    failing: bool,
    dropping: bool,
}

struct Shared {
    state: Mutex<State>,
    space: Condvar,
    wake: tokio::sync::Notify,
    counters: Arc<ExportCounters>,
    cfg: QueueConfig,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gauges(&self, st: &State) {
        let c = &self.counters;
        c.queue_batches
            .store(st.mem.len() as u64, Ordering::Relaxed);
        c.queue_spans.store(
            st.mem.iter().map(|i| i.batch.spans.len() as u64).sum(),
            Ordering::Relaxed,
        );
        let (b, n) = st
            .spool
            .as_ref()
            .map_or((0, 0), |s| (s.bytes(), s.len() as u64));
        c.spool_bytes.store(b, Ordering::Relaxed);
        c.spool_batches.store(n, Ordering::Relaxed);
    }

    /// Next batch to export: the oldest spool file, else the oldest in-memory batch.
    fn take(&self, st: &mut State) -> Option<Job> {
        while let Some(sp) = st.spool.as_mut() {
            let Some(e) = sp.front().cloned() else { break };
            match sp.read(&e) {
                Ok(b) => {
                    return Some(Job {
                        seq: e.seq,
                        batch: Arc::new(b),
                        from_spool: true,
                    });
                }
                Err(err) => {
                    tracing::error!(
                        exporter = self.counters.exporter,
                        seq = e.seq,
                        error = %err,
                        "unreadable spool file moved aside (.bad); its spans are lost"
                    );
                    self.counters.add_dropped(DropReason::SpoolError, e.spans);
                    sp.quarantine(e.seq);
                    self.gauges(st);
                }
            }
        }
        let item = st.mem.pop_front()?;
        self.gauges(st);
        self.space.notify_all();
        Some(Job {
            seq: item.seq,
            batch: item.batch,
            from_spool: false,
        })
    }

    /// Writes a not-yet-spooled batch to the spool at shutdown (or counts it dropped).
    fn persist(&self, st: &mut State, seq: u64, batch: &Batch) -> bool {
        let n = batch.spans.len() as u64;
        let res = match st.spool.as_mut() {
            Some(sp) => sp.push(seq, batch).map(|_| ()),
            None => Err(SpoolError::Full),
        };
        match res {
            Ok(()) => {
                self.counters.spooled.fetch_add(n, Ordering::Relaxed);
                true
            }
            Err(e) => {
                if st.spool.is_some() {
                    tracing::error!(exporter = self.counters.exporter, error = %e, spans = n, "batch lost at shutdown");
                }
                self.counters.add_dropped(DropReason::Shutdown, n);
                false
            }
        }
    }
}

/// Handle of one exporter's queue and its worker task.
pub struct Queue {
    shared: Arc<Shared>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// What was left when a queue stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueReport {
    /// Exporter name.
    pub exporter: &'static str,
    /// Batches left in the spool (replayed by the next run with the same spool dir).
    pub spool_batches: u64,
    /// Bytes left in the spool.
    pub spool_bytes: u64,
    /// Spool directory, if any.
    pub spool_dir: Option<PathBuf>,
    /// Whether the worker had to stop at the deadline with work pending.
    pub timed_out: bool,
}

impl Queue {
    /// Opens the spool (if configured: the files left by a previous run are
    /// queued first) and starts the worker on `rt`.
    /// Errors: the spool directory cannot be created, read or locked.
    pub fn start<E: Exporter>(
        exporter: E,
        cfg: QueueConfig,
        counters: Arc<ExportCounters>,
        rt: &tokio::runtime::Handle,
    ) -> std::io::Result<Queue> {
        let spool = match &cfg.spool {
            Some((dir, max)) => Some(Spool::open(dir, *max)?),
            None => None,
        };
        let next_seq = spool.as_ref().map_or(0, Spool::next_seq);
        if let Some(sp) = spool.as_ref().filter(|s| !s.is_empty()) {
            tracing::info!(
                exporter = counters.exporter,
                batches = sp.len(),
                bytes = sp.bytes(),
                dir = %sp.dir().display(),
                "replaying batches spooled by a previous run"
            );
        }
        let mut cfg = cfg;
        cfg.max_batches = cfg.max_batches.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                mem: VecDeque::new(),
                spool,
                next_seq,
                closed: false,
                deadline: None,
                failing: false,
                dropping: false,
            }),
            space: Condvar::new(),
            wake: tokio::sync::Notify::new(),
            counters,
            cfg,
        });
        shared.gauges(&shared.lock());
        let worker = rt.spawn(worker(exporter, Arc::clone(&shared)));
        Ok(Queue {
            shared,
            worker: Some(worker),
        })
    }

    /// The queue's counters.
    pub fn counters(&self) -> &Arc<ExportCounters> {
        &self.shared.counters
    }

    /// Queues `batch` (from the capture thread; see the module doc for what
    /// happens when memory is full). Never fails: what cannot be kept is counted.
    pub fn push(&self, batch: Arc<Batch>) {
        let sh = &self.shared;
        let c = &sh.counters;
        let n = batch.spans.len() as u64;
        c.queued.fetch_add(n, Ordering::Relaxed);
        c.batches_queued.fetch_add(1, Ordering::Relaxed);
        let mut st = sh.lock();
        loop {
            if st.mem.len() < sh.cfg.max_batches {
                let seq = st.next_seq;
                st.next_seq += 1;
                st.mem.push_back(Item { seq, batch });
                st.dropping = false;
                sh.gauges(&st);
                drop(st);
                sh.wake.notify_one();
                return;
            }
            if sh.cfg.overflow == Overflow::Block && !st.failing && !st.closed {
                st = sh.space.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            break;
        }
        // Memory full: spill its oldest batch to the spool, keep the new one.
        let State {
            mem,
            spool,
            dropping,
            ..
        } = &mut *st;
        let outcome = match (spool.as_mut(), mem.front()) {
            (Some(sp), Some(oldest)) => match sp.push(oldest.seq, &oldest.batch) {
                Ok(_) => Ok(()),
                Err(SpoolError::Full) => Err(DropReason::SpoolFull),
                Err(SpoolError::Io(e)) => {
                    tracing::error!(exporter = c.exporter, error = %e, "cannot write the spool");
                    Err(DropReason::SpoolError)
                }
            },
            _ => Err(DropReason::QueueFull),
        };
        match outcome {
            Ok(()) => {
                if let Some(old) = mem.pop_front() {
                    c.spooled
                        .fetch_add(old.batch.spans.len() as u64, Ordering::Relaxed);
                }
                let seq = st.next_seq;
                st.next_seq += 1;
                st.mem.push_back(Item { seq, batch });
                st.dropping = false;
            }
            Err(reason) => {
                if !*dropping {
                    tracing::warn!(
                        exporter = c.exporter,
                        reason = reason.as_str(),
                        "export queue full: dropping the newest spans until there is room"
                    );
                    *dropping = true;
                }
                c.add_dropped(reason, n);
            }
        }
        sh.gauges(&st);
        drop(st);
        sh.wake.notify_one();
    }

    /// No more batches will be queued: the worker exports what is left until
    /// `grace` has passed, then spools the rest.
    pub fn close(&self, grace: Duration) {
        let mut st = self.shared.lock();
        st.closed = true;
        st.deadline = Some(Instant::now() + grace);
        drop(st);
        self.shared.space.notify_all();
        self.shared.wake.notify_one();
    }

    /// Waits for the worker (call after [`Queue::close`]) and reports what is left.
    pub async fn join(mut self) -> QueueReport {
        let deadline = self.shared.lock().deadline;
        if let Some(h) = self.worker.take() {
            // The worker honours the deadline itself; the margin covers spooling.
            let limit = deadline.map(|d| d + Duration::from_secs(5));
            let res = match limit {
                Some(l) => tokio::time::timeout_at(l.into(), h).await.ok(),
                None => Some(h.await),
            };
            if res.is_none() {
                tracing::error!(
                    exporter = self.shared.counters.exporter,
                    "export worker did not stop in time"
                );
            }
        }
        let st = self.shared.lock();
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d)
            && st.spool.as_ref().is_some_and(|s| !s.is_empty());
        QueueReport {
            exporter: self.shared.counters.exporter,
            spool_batches: st.spool.as_ref().map_or(0, |s| s.len() as u64),
            spool_bytes: st.spool.as_ref().map_or(0, Spool::bytes),
            spool_dir: st.spool.as_ref().map(|s| s.dir().to_owned()),
            timed_out,
        }
    }
}

/// xorshift64* for retry jitter (no dependency, no need for quality).
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter(t | 1)
    }
    /// A factor in [0.5, 1.0).
    fn factor(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        0.5 + (r as f64 / (1u64 << 53) as f64) * 0.5
    }
}

fn backoff(cfg: &QueueConfig, attempt: u32, jitter: &mut Jitter) -> Duration {
    let base = cfg
        .retry_initial
        .saturating_mul(1u32 << attempt.min(20))
        .min(cfg.retry_max);
    base.mul_f64(jitter.factor())
}

async fn worker<E: Exporter>(mut exporter: E, sh: Arc<Shared>) {
    let c = Arc::clone(&sh.counters);
    let mut jitter = Jitter::new();
    'jobs: loop {
        let job = loop {
            let notified = sh.wake.notified();
            {
                let mut st = sh.lock();
                if let Some(job) = sh.take(&mut st) {
                    break job;
                }
                if st.closed {
                    break 'jobs;
                }
            }
            notified.await;
        };
        let n = job.batch.spans.len() as u64;
        let mut attempt: u32 = 0;
        loop {
            let deadline = sh.lock().deadline;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop_at_deadline(&sh, Some(job));
                break 'jobs;
            }
            let fut = exporter.export(&job.batch);
            let res = match deadline {
                Some(d) => tokio::time::timeout_at(d.into(), fut)
                    .await
                    .unwrap_or_else(|_| {
                        Err(ExportError::Retryable(
                            "shutdown grace period over during the export".into(),
                        ))
                    }),
                None => fut.await,
            };
            match res {
                Ok(()) => {
                    c.sent.fetch_add(n, Ordering::Relaxed);
                    c.batches_sent.fetch_add(1, Ordering::Relaxed);
                    let mut st = sh.lock();
                    if job.from_spool {
                        c.replayed.fetch_add(n, Ordering::Relaxed);
                        if let Some(sp) = st.spool.as_mut() {
                            sp.remove(job.seq);
                        }
                        sh.gauges(&st);
                    }
                    if st.failing {
                        st.failing = false;
                        tracing::info!(exporter = c.exporter, "export recovered");
                    }
                    c.up.store(1, Ordering::Relaxed);
                    break;
                }
                Err(ExportError::Retryable(msg)) => {
                    c.retried.fetch_add(1, Ordering::Relaxed);
                    c.set_last_error(&msg);
                    c.up.store(0, Ordering::Relaxed);
                    {
                        let mut st = sh.lock();
                        if !st.failing {
                            st.failing = true;
                            tracing::warn!(exporter = c.exporter, error = %msg, "export failed, retrying with backoff");
                        } else if attempt % 10 == 9 {
                            tracing::warn!(exporter = c.exporter, error = %msg, attempts = attempt + 1, "export still failing");
                        }
                    }
                    // Blocked producers may now spill.
                    sh.space.notify_all();
                    let wait = backoff(&sh.cfg, attempt, &mut jitter);
                    attempt = attempt.saturating_add(1);
                    let until = Instant::now() + wait;
                    let until = match deadline {
                        Some(d) => until.min(d),
                        None => until,
                    };
                    // Wake early when close() sets a deadline.
                    let _ = tokio::time::timeout_at(until.into(), async {
                        loop {
                            sh.wake.notified().await;
                            let st = sh.lock();
                            if st.deadline.is_some_and(|d| Instant::now() >= d) {
                                break;
                            }
                        }
                    })
                    .await;
                    // A close() wakeup is consumed above; re-arm it for the take loop.
                    sh.wake.notify_one();
                }
                Err(ExportError::Fatal(msg)) => {
                    tracing::error!(
                        exporter = c.exporter,
                        error = %msg,
                        spans = n,
                        "export failed with a non-retryable error; batch dropped"
                    );
                    c.set_last_error(&msg);
                    c.add_dropped(DropReason::Fatal, n);
                    let mut st = sh.lock();
                    if job.from_spool
                        && let Some(sp) = st.spool.as_mut()
                    {
                        sp.remove(job.seq);
                    }
                    sh.gauges(&st);
                    break;
                }
            }
        }
    }
    exporter.shutdown().await;
}

/// Deadline passed with work pending: spool the batch in flight and all of memory.
fn stop_at_deadline(sh: &Shared, job: Option<Job>) {
    let mut st = sh.lock();
    if let Some(j) = job.filter(|j| !j.from_spool) {
        sh.persist(&mut st, j.seq, &j.batch);
    }
    while let Some(item) = st.mem.pop_front() {
        sh.persist(&mut st, item.seq, &item.batch);
    }
    sh.gauges(&st);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mcptap_mcp::{Span, SpanStatus};
    use std::sync::atomic::AtomicU32;

    fn batch(i: u8) -> Arc<Batch> {
        Arc::new(Batch::new(vec![Span {
            trace_id: [i; 16],
            span_id: [i; 8],
            parent_span_id: None,
            trace_state: String::new(),
            name: "x".into(),
            start_ns: 1,
            end_ns: 2,
            status: SpanStatus::Unset,
            instance_id: "i".into(),
            attributes: vec![],
            events: vec![],
        }]))
    }

    /// Fails the first `fail` attempts retryably, answers batch id `fatal` fatally,
    /// records what it accepted.
    struct Scripted {
        fail: Arc<AtomicU32>,
        fatal: u64,
        got: Arc<Mutex<Vec<u64>>>,
    }

    impl Exporter for Scripted {
        fn name(&self) -> &'static str {
            "test"
        }
        async fn export(&mut self, b: &Batch) -> Result<(), ExportError> {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(ExportError::Retryable("down".into()));
            }
            if b.id == self.fatal {
                return Err(ExportError::Fatal("Code: 516".into()));
            }
            self.got.lock().unwrap().push(b.id);
            Ok(())
        }
    }

    #[test]
    fn order_retry_spill_fatal_and_spooled_restart() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = std::env::temp_dir().join(format!("mcptap-queue-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicU32::new(6));
        let batches: Vec<Arc<Batch>> = (1..=8).map(batch).collect();
        let cfg = QueueConfig {
            max_batches: 2,
            overflow: Overflow::Spill,
            spool: Some((dir.clone(), 1 << 20)),
            retry_initial: Duration::from_millis(5),
            retry_max: Duration::from_millis(20),
        };
        let c = Arc::new(ExportCounters::new("test"));
        let q = Queue::start(
            Scripted {
                fail: Arc::clone(&fail),
                fatal: batches[4].id,
                got: Arc::clone(&got),
            },
            cfg.clone(),
            Arc::clone(&c),
            rt.handle(),
        )
        .unwrap();
        for b in &batches {
            q.push(Arc::clone(b));
        }
        q.close(Duration::from_secs(10));
        let rep = rt.block_on(q.join());
        let want: Vec<u64> = batches
            .iter()
            .filter(|b| b.id != batches[4].id)
            .map(|b| b.id)
            .collect();
        assert_eq!(*got.lock().unwrap(), want, "in order, fatal one skipped");
        assert_eq!(c.sent.load(Ordering::Relaxed), 7);
        assert_eq!(c.dropped(DropReason::Fatal), 1);
        assert!(c.retried.load(Ordering::Relaxed) >= 6);
        assert!(
            c.spooled.load(Ordering::Relaxed) > 0,
            "memory of 2 must spill"
        );
        assert_eq!(rep.spool_batches, 0);

        // Exporter down for good: shutdown spools memory and the batch in flight;
        // a new queue on the same spool sends them, in order.
        let got2 = Arc::new(Mutex::new(Vec::new()));
        let c2 = Arc::new(ExportCounters::new("test"));
        let q = Queue::start(
            Scripted {
                fail: Arc::new(AtomicU32::new(u32::MAX)),
                fatal: 0,
                got: Arc::clone(&got2),
            },
            cfg.clone(),
            Arc::clone(&c2),
            rt.handle(),
        )
        .unwrap();
        for b in &batches[..3] {
            q.push(Arc::clone(b));
        }
        std::thread::sleep(Duration::from_millis(50));
        q.close(Duration::from_millis(100));
        let rep = rt.block_on(q.join());
        assert_eq!(rep.spool_batches, 3);
        assert!(got2.lock().unwrap().is_empty());
        let c3 = Arc::new(ExportCounters::new("test"));
        let q = Queue::start(
            Scripted {
                fail: Arc::new(AtomicU32::new(0)),
                fatal: 0,
                got: Arc::clone(&got2),
            },
            cfg,
            Arc::clone(&c3),
            rt.handle(),
        )
        .unwrap();
        q.close(Duration::from_secs(10));
        let rep = rt.block_on(q.join());
        assert_eq!(rep.spool_batches, 0);
        let ids: Vec<u64> = batches[..3].iter().map(|b| b.id).collect();
        assert_eq!(*got2.lock().unwrap(), ids);
        assert_eq!(c3.replayed.load(Ordering::Relaxed), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
