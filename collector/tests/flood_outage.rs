//! OTLP outages (ClickHouse outages are in outage.rs): the collector binary
//! exports a capture (5 shifted copies of the real fixture, 335 spans) over
//! OTLP/HTTP to `collector/tests/support/otlp_sink.py` (oteltest's HttpSink).
//!
//! - The endpoint is down when the run starts and comes back while the
//!   collector is still retrying: every span arrives exactly once.
//! - The endpoint is down for the whole run: what is left goes to the spool
//!   (exit 4); a second run with an empty capture replays the spool once the
//!   endpoint is back: every span exactly once, and the spool is empty.
//! - The spool bound is too small: what does not fit is dropped and counted
//!   (`dropped_spool_full` in the report), and exactly the rest arrives.
//! - ClickHouse behind a proxy that answers 503 on its first connections, or holds
//!   the answers past `--clickhouse-timeout` (the insert did land: the retry must be
//!   deduplicated by its `insert_deduplication_token`): every span exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::ChildGuard;

const COPIES: u8 = 5;
const SPANS: usize = 67 * COPIES as usize;

/// otlp_sink.py (HTTP) on `port`, appending received requests to `out`.
fn sink(port: u16, out: &Path) -> ChildGuard {
    let mut child = Command::new(support::venv_python())
        .arg(support::repo_root().join("collector/tests/support/otlp_sink.py"))
        .args(["--protocol", "http", "--port", &port.to_string()])
        .arg("--out")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("otlp_sink.py");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let ready = lines.any(|l| l.map(|l| l.trim() == "READY").unwrap_or(false));
    assert!(ready, "otlp_sink.py did not start on {port}");
    std::thread::spawn(move || for _ in lines {});
    ChildGuard(child)
}

/// Received span ids with how many times each arrived.
fn received(out: &Path) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Value = serde_json::from_str(line).unwrap();
        for rs in r["resourceSpans"].as_array().into_iter().flatten() {
            for sc in rs["scopes"].as_array().into_iter().flatten() {
                for s in sc["spans"].as_array().into_iter().flatten() {
                    *ids.entry(s["spanId"].as_str().unwrap().to_string())
                        .or_default() += 1;
                }
            }
        }
    }
    ids
}

fn wait_received(out: &Path, n: usize, limit: Duration) -> HashMap<String, usize> {
    let t = Instant::now();
    loop {
        let r = received(out);
        if r.values().sum::<usize>() >= n || t.elapsed() > limit {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn collector(pcap: &Path, port: u16, spool: &Path, extra: &[&str]) -> Command {
    let mut c = support::collector();
    c.arg("--pcap")
        .arg(pcap)
        .args(["--otlp-endpoint", &format!("http://127.0.0.1:{port}")])
        .args(["--otlp-protocol", "http/protobuf", "--otlp-timeout", "2000"])
        .args(["--batch-max-spans", "10", "--queue-max-batches", "2"])
        .args(["--retry-max-delay", "0.3", "--no-summary"])
        .arg("--spool-dir")
        .arg(spool)
        .args(extra)
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .env_remove("OTEL_EXPORTER_OTLP_HEADERS");
    c
}

fn setup(tag: &str) -> (support::TempDir, PathBuf) {
    let tmp = support::TempDir::new(tag);
    let pcap = tmp.path().join("five.pcap");
    support::multiply_capture(&support::fixture("cutover.pcap"), &pcap, COPIES, 8000);
    (tmp, pcap)
}

/// (queued, dropped) of the `export otlp:` report line.
fn report(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("export otlp:"))
        .unwrap_or_else(|| panic!("no export report: {stderr}"));
    let num = |key: &str| -> usize {
        let i = line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line}"));
        line[..i]
            .split_whitespace()
            .last()
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("bad {key:?} in {line}"))
    };
    (num(" spans queued"), num(" dropped"))
}

fn assert_exactly_once(ids: &HashMap<String, usize>, n: usize) {
    let dup: Vec<_> = ids.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dup.is_empty(), "duplicates: {dup:?}");
    assert_eq!(ids.len(), n, "distinct spans received");
}

#[test]
fn otlp_endpoint_down_then_back_during_the_run() {
    let (tmp, pcap) = setup("otlp-outage-live");
    let port = support::free_port();
    let out = tmp.path().join("received.jsonl");
    let child = collector(
        &pcap,
        port,
        &tmp.path().join("spool"),
        &["--shutdown-grace", "60"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Down for 4 s while the collector retries, then back on the same port.
    std::thread::sleep(Duration::from_secs(4));
    let _sink = sink(port, &out);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(report(&err), (SPANS, 0), "{err}");
    let ids = wait_received(&out, SPANS, Duration::from_secs(10));
    assert_exactly_once(&ids, SPANS);
}

#[test]
fn otlp_endpoint_down_for_the_whole_run_then_spool_replayed_once() {
    let (tmp, pcap) = setup("otlp-outage-spool");
    let port = support::free_port();
    let spool = tmp.path().join("spool");
    let out = tmp.path().join("received.jsonl");
    let (code, _, err) = support::run(&mut collector(
        &pcap,
        port,
        &spool,
        &["--shutdown-grace", "1"],
    ));
    assert_eq!(code, 4, "not delivered: exit 4\n{err}");
    assert_eq!(report(&err), (SPANS, 0), "nothing lost, all spooled: {err}");
    // Back: a run on an empty capture replays the spool.
    let _sink = sink(port, &out);
    let empty = tmp.path().join("empty.pcap");
    support::empty_capture(&empty);
    let (code, _, err2) = support::run(&mut collector(
        &empty,
        port,
        &spool,
        &["--shutdown-grace", "30"],
    ));
    assert_eq!(code, 0, "{err2}");
    assert!(
        err2.contains(&format!("({SPANS} replayed from the spool)")),
        "{err2}"
    );
    let ids = wait_received(&out, SPANS, Duration::from_secs(10));
    assert_exactly_once(&ids, SPANS);
    // A third run replays nothing more.
    let (code, _, err3) = support::run(&mut collector(&empty, port, &spool, &[]));
    assert_eq!(code, 0, "{err3}");
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&received(&out), SPANS);
}

#[test]
fn spool_overflow_is_counted_and_the_rest_arrives_once() {
    let (tmp, pcap) = setup("otlp-outage-full");
    let port = support::free_port();
    let spool = tmp.path().join("spool");
    let out = tmp.path().join("received.jsonl");
    let (code, _, err) = support::run(&mut collector(
        &pcap,
        port,
        &spool,
        &["--shutdown-grace", "1", "--spool-max-bytes", "40000"],
    ));
    assert_eq!(code, 4, "{err}");
    let (queued, dropped) = report(&err);
    assert_eq!(queued, SPANS);
    assert!(
        err.contains("spool_full="),
        "spool overflow counted by reason: {err}"
    );
    assert!(dropped > 0 && dropped < SPANS, "{err}");
    let _sink = sink(port, &out);
    let empty = tmp.path().join("empty.pcap");
    support::empty_capture(&empty);
    let (code, _, err2) = support::run(&mut collector(
        &empty,
        port,
        &spool,
        &["--shutdown-grace", "30"],
    ));
    assert_eq!(code, 0, "{err2}");
    let ids = wait_received(&out, SPANS - dropped, Duration::from_secs(10));
    assert_exactly_once(&ids, SPANS - dropped);
    eprintln!(
        "spool bound 40000 bytes: {dropped} of {SPANS} spans dropped (counted), {} replayed",
        ids.len()
    );
}

/// How the proxy in front of ClickHouse treats its first `n` connections.
#[derive(Clone, Copy)]
enum Trouble {
    /// Answers `503 Service Unavailable` without forwarding.
    Errors,
    /// Forwards the request, holds the answer this long (past the client's timeout).
    Slow(Duration),
}

/// A TCP proxy on a free port to `upstream`, troubled on its first `n` connections.
/// Returns the port and the number of connections seen.
fn troubled_proxy(
    upstream: u16,
    n: usize,
    trouble: Trouble,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::Ordering;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { break };
            let k = seen2.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                if k < n && matches!(trouble, Trouble::Errors) {
                    let mut buf = [0u8; 4096];
                    let _ = c.read(&mut buf);
                    let body = "Code: 202. DB::Exception: Too many simultaneous queries. (TOO_MANY_SIMULTANEOUS_QUERIES)";
                    let _ = write!(
                        c,
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut up2);
                    let _ = up2.shutdown(Shutdown::Write);
                });
                let mut buf = [0u8; 65536];
                let mut first = true;
                while let Ok(m) = up.read(&mut buf) {
                    if m == 0 {
                        break;
                    }
                    if first
                        && k < n
                        && let Trouble::Slow(d) = trouble
                    {
                        std::thread::sleep(d);
                    }
                    first = false;
                    if c.write_all(&buf[..m]).is_err() {
                        break;
                    }
                }
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// Replays 3 copies of the fixture into ClickHouse through a troubled proxy;
/// every span must be there exactly once.
fn clickhouse_through(trouble: Trouble, tag: &str) {
    let front = support::Front::start();
    let db = support::unique_db(tag);
    support::apply_schema(&front, &db);
    let tmp = support::TempDir::new(tag);
    let pcap = tmp.path().join("three.pcap");
    support::multiply_capture(&support::fixture("cutover.pcap"), &pcap, 3, 8000);
    let upstream: u16 = front
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("ClickHouse port");
    let (port, seen) = troubled_proxy(upstream, 3, trouble);
    let (code, _, err) = support::run(
        support::collector()
            .arg("--pcap")
            .arg(&pcap)
            .args(["--clickhouse-url", &format!("http://127.0.0.1:{port}")])
            .args(["--clickhouse-database", &db, "--clickhouse-timeout", "1"])
            .args(["--batch-max-spans", "20", "--retry-max-delay", "0.3"])
            .args(["--shutdown-grace", "60", "--no-summary"])
            .arg("--spool-dir")
            .arg(tmp.path().join("spool")),
    );
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("export clickhouse:"))
        .unwrap_or_else(|| panic!("no report: {err}"));
    assert!(line.contains(" 0 dropped"), "{line}");
    assert!(
        !line.contains(" 0 retries"),
        "the trouble caused retries: {line}"
    );
    let counts = front.q(&format!(
        "SELECT count(), uniqExact(SpanId) FROM {db}.otel_traces"
    ));
    eprintln!(
        "{tag}: {line}; {} proxy connections; rows/distinct = {}",
        seen.load(std::sync::atomic::Ordering::SeqCst),
        counts.trim()
    );
    assert_eq!(counts.trim(), "201\t201", "every span exactly once");
}

#[test]
fn clickhouse_answering_errors_then_recovering_loses_and_duplicates_nothing() {
    clickhouse_through(Trouble::Errors, "ch_errors");
}

#[test]
fn clickhouse_slower_than_the_timeout_duplicates_nothing() {
    clickhouse_through(Trouble::Slow(Duration::from_millis(1500)), "ch_slow");
}
