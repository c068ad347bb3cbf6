//! The admin server: `/metrics` parsed as Prometheus text format 0.0.4 (every
//! line well-formed, HELP and TYPE for every family, counters `_total`, label
//! escaping) with the values that were published; `/healthz`; `/readyz` before
//! ready, when ready and while shutting down; `shutdown_signal` on SIGTERM.

mod support;

use mcptap_collector::admin::{self, AdminState};
use mcptap_collector::export::{DropReason, ExportCounters};
use mcptap_collector::metrics::CaptureSnapshot;
use mcptap_collector::source::KernelStats;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` over a fresh connection: (status, headers lowercased, body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, HashMap<String, String>, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8(buf).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers_chunked(&text) {
        support::dechunk(body)
    } else {
        body.to_string()
    };
    (status, headers, body)
}

fn headers_chunked(text: &str) -> bool {
    text.to_lowercase().contains("transfer-encoding: chunked")
}

/// A parsed exposition: samples keyed by `name` and sorted labels.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// Parses the text format strictly enough for our output: every line is a HELP,
/// a TYPE (right after its HELP) or a sample of the current family.
fn parse_exposition(text: &str) -> Samples {
    assert!(text.ends_with('\n'), "exposition ends with a newline");
    let mut samples = Samples::new();
    let mut family: Option<(String, String)> = None; // (name, type)
    let mut help_for: Option<String> = None;
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !help.is_empty(), "{line}");
            assert!(seen.insert(name.to_string()), "family {name} twice");
            help_for = Some(name.to_string());
            family = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name type");
            assert_eq!(
                help_for.as_deref(),
                Some(name),
                "TYPE right after HELP: {line}"
            );
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} ends with _total");
            } else {
                assert!(
                    !name.ends_with("_total"),
                    "gauge {name} must not end with _total"
                );
            }
            family = Some((name.to_string(), kind.to_string()));
        } else {
            assert!(
                !line.starts_with('#') && !line.is_empty(),
                "unexpected line {line:?}"
            );
            let (fam, _) = family
                .as_ref()
                .unwrap_or_else(|| panic!("sample before TYPE: {line}"));
            let (name_labels, value) = line.rsplit_once(' ').expect("sample value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            assert!(value >= 0.0, "{line}");
            let (name, labels) = match name_labels.split_once('{') {
                None => (name_labels, Vec::new()),
                Some((n, rest)) => (n, parse_labels(rest.strip_suffix('}').expect("}"))),
            };
            assert_eq!(name, fam, "sample of its family: {line}");
            let mut sorted = labels.clone();
            sorted.sort();
            assert!(
                samples.insert((name.to_string(), sorted), value).is_none(),
                "duplicate series {line}"
            );
        }
    }
    samples
}

/// `k="v",k2="v2"` with `\\`, `\"`, `\n` escapes.
fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut name = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            name.push(c);
        }
        assert!(valid_name(&name), "label name {name:?}");
        assert_eq!(chars.next(), Some('"'), "label value quoted");
        let mut v = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next() {
                    Some('\\') => v.push('\\'),
                    Some('"') => v.push('"'),
                    Some('n') => v.push('\n'),
                    other => panic!("bad escape {other:?}"),
                },
                '"' => break,
                '\n' => panic!("raw newline in a label value"),
                c => v.push(c),
            }
        }
        out.push((name, v));
        match chars.next() {
            None => return out,
            Some(',') => continue,
            Some(c) => panic!("unexpected {c:?} after a label"),
        }
    }
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    *samples
        .get(&(name.to_string(), l))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

fn snapshot() -> CaptureSnapshot {
    let mut c = CaptureSnapshot::default();
    c.link_tcp.packets = 1234;
    c.link_tcp.packet_bytes = 987_654;
    c.link_tcp.packets_not_tcp = 5;
    c.link_tcp.packets_fragmented = 2;
    c.link_tcp.flows_opened = 7;
    c.link_tcp.flows_idle_timeout = 3;
    c.link_tcp.tcp_gaps = 4;
    c.link_tcp.tcp_gap_bytes = 1460;
    c.http.http_parse_errors = 6;
    c.mcp.methods.insert("tools/call".into(), 3);
    c.mcp.methods.insert("we\"ird\\name\nx".into(), 1);
    c.mcp.status_2xx = 9;
    c.mcp.status_5xx = 1;
    c.mcp.request_json_errors = 8;
    c.mcp.traceparent_invalid = 2;
    c.mcp.legacy_session_requests = 11;
    c.mcp.era_modern = 12;
    c.spans = 13;
    c.open_flows = 2;
    c.kernel = Some(KernelStats {
        received: 100,
        dropped: 2,
        if_dropped: 1,
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness() {
    let state = AdminState::new();
    let server = admin::serve("127.0.0.1:0".parse().expect("addr"), state.clone())
        .await
        .expect("serve");
    let addr = server.local_addr();

    // Before anything is published: up, not ready, build info only.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let (st, _, body) = get(addr, "/readyz").await;
    assert_eq!((st, body.as_str()), (503, "not ready: starting\n"));
    let s = parse_exposition(&get(addr, "/metrics").await.2);
    assert_eq!(
        value(
            &s,
            "mcptap_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    state.publish_capture(snapshot());
    let otlp = Arc::new(ExportCounters::new("otlp"));
    otlp.queued.store(70, Ordering::Relaxed);
    otlp.sent.store(60, Ordering::Relaxed);
    otlp.spooled.store(4, Ordering::Relaxed);
    otlp.retried.store(5, Ordering::Relaxed);
    otlp.add_dropped(DropReason::Fatal, 3);
    otlp.queue_batches.store(2, Ordering::Relaxed);
    otlp.spool_bytes.store(4096, Ordering::Relaxed);
    state.add_exporter(otlp);
    state.add_exporter(Arc::new(ExportCounters::new("clickhouse")));
    state.set_ready();

    let (st, headers, text) = get(addr, "/metrics").await;
    assert_eq!(st, 200);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let s = parse_exposition(&text);
    let v = |n: &str, l: &[(&str, &str)]| value(&s, n, l);
    assert_eq!(v("mcptap_packets_total", &[]), 1234.0);
    assert_eq!(v("mcptap_packet_bytes_total", &[]), 987_654.0);
    assert_eq!(
        v("mcptap_packets_dropped_total", &[("reason", "not_tcp")]),
        5.0
    );
    assert_eq!(
        v("mcptap_packets_dropped_total", &[("reason", "fragmented")]),
        2.0
    );
    assert_eq!(
        v("mcptap_packets_dropped_total", &[("reason", "malformed")]),
        0.0
    );
    assert_eq!(v("mcptap_flows_opened_total", &[]), 7.0);
    assert_eq!(
        v("mcptap_flows_closed_total", &[("reason", "idle_timeout")]),
        3.0
    );
    assert_eq!(v("mcptap_flows_open", &[]), 2.0);
    assert_eq!(v("mcptap_tcp_gaps_total", &[]), 4.0);
    assert_eq!(v("mcptap_tcp_gap_bytes_total", &[]), 1460.0);
    assert_eq!(v("mcptap_http_parse_errors_total", &[]), 6.0);
    assert_eq!(v("mcptap_decode_errors_total", &[("stage", "http")]), 6.0);
    assert_eq!(
        v("mcptap_decode_errors_total", &[("stage", "json_request")]),
        8.0
    );
    assert_eq!(
        v("mcptap_decode_errors_total", &[("stage", "traceparent")]),
        2.0
    );
    assert_eq!(
        v("mcptap_mcp_requests_total", &[("method", "tools/call")]),
        3.0
    );
    // Escaped on the wire, equal after unescaping.
    assert_eq!(
        v(
            "mcptap_mcp_requests_total",
            &[("method", "we\"ird\\name\nx")]
        ),
        1.0
    );
    assert_eq!(v("mcptap_http_responses_total", &[("class", "2xx")]), 9.0);
    assert_eq!(v("mcptap_http_responses_total", &[("class", "5xx")]), 1.0);
    assert_eq!(v("mcptap_legacy_session_requests_total", &[]), 11.0);
    assert_eq!(v("mcptap_mcp_exchanges_total", &[("era", "modern")]), 12.0);
    assert_eq!(v("mcptap_spans_total", &[]), 13.0);
    assert_eq!(v("mcptap_capture_kernel_dropped_total", &[]), 2.0);
    assert_eq!(v("mcptap_capture_interface_dropped_total", &[]), 1.0);
    assert!(v("mcptap_capture_snapshot_age_seconds", &[]) < 60.0);
    let e = |sink: &str, outcome: &str| {
        v(
            "mcptap_export_spans_total",
            &[("sink", sink), ("outcome", outcome)],
        )
    };
    assert_eq!(e("otlp", "queued"), 70.0);
    assert_eq!(e("otlp", "sent"), 60.0);
    assert_eq!(e("otlp", "spooled"), 4.0);
    assert_eq!(e("otlp", "dropped_fatal"), 3.0);
    assert_eq!(e("otlp", "dropped_queue_full"), 0.0);
    assert_eq!(e("clickhouse", "sent"), 0.0);
    assert_eq!(v("mcptap_export_retries_total", &[("sink", "otlp")]), 5.0);
    assert_eq!(v("mcptap_export_queue_depth", &[("sink", "otlp")]), 2.0);
    assert_eq!(v("mcptap_export_spool_bytes", &[("sink", "otlp")]), 4096.0);
    assert_eq!(v("mcptap_export_up", &[("sink", "clickhouse")]), 1.0);

    // Every family in the output is documented in docs/metrics.md.
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"),
    )
    .expect("docs/metrics.md");
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = line.split(' ').next().expect("name");
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/metrics.md"
        );
    }

    let (st, _, body) = get(addr, "/readyz").await;
    assert_eq!((st, body.as_str()), (200, "ready\n"));
    state.set_shutting_down();
    let (st, _, body) = get(addr, "/readyz").await;
    assert_eq!((st, body.as_str()), (503, "not ready: shutting down\n"));
    // Liveness and metrics keep working while the queues drain.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    assert_eq!(get(addr, "/metrics").await.0, 200);
    assert_eq!(get(addr, "/nope").await.0, 404);

    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "stopped"
    );
}

#[tokio::test]
async fn busy_address_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let e = admin::serve(addr, AdminState::new())
        .await
        .expect_err("in use");
    let msg = format!("{e:#}");
    assert!(msg.contains(&format!("--admin-addr {addr}")), "{msg}");
    assert!(msg.to_lowercase().contains("in use"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_signal_resolves_on_sigterm() {
    // Install a SIGTERM handler first so a signal sent before shutdown_signal
    // registers cannot kill the test process.
    let _guard =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("handler");
    let task = tokio::spawn(admin::shutdown_signal());
    let pid = std::process::id().to_string();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        if task.is_finished() {
            break;
        }
    }
    let name = tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("resolved")
        .expect("task");
    assert_eq!(name, "SIGTERM");
}

/// Today's `/metrics` on fixed figures ([`snapshot`] and two exporters),
/// with the snapshot age (the only value that depends on the clock) and the
/// crate version masked.
/// `collector/tests/data/metrics-exposition.txt` was written by the
/// hand-written 0.0.4 writer this crate had before prometheus-client; run with
/// `MCPTAP_BLESS=1` to rewrite it.
fn exposition_on_fixed_figures() -> String {
    let state = AdminState::new();
    state.publish_capture(snapshot());
    let otlp = Arc::new(ExportCounters::new("otlp"));
    otlp.queued.store(70, Ordering::Relaxed);
    otlp.sent.store(60, Ordering::Relaxed);
    otlp.add_dropped(DropReason::Fatal, 3);
    otlp.up.store(0, Ordering::Relaxed);
    state.add_exporter(otlp);
    state.add_exporter(Arc::new(ExportCounters::new("clickhouse")));
    let text = state.render_metrics().expect("encode");
    let mut out = String::new();
    for line in text.lines() {
        match line.strip_prefix("mcptap_capture_snapshot_age_seconds ") {
            Some(age) => {
                let age: f64 = age.parse().expect("age is a number");
                assert!((0.0..60.0).contains(&age), "{line}");
                out.push_str("mcptap_capture_snapshot_age_seconds <age>\n");
            }
            None => {
                let version = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
                out.push_str(&line.replace(&version, "version=\"<version>\""));
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn exposition_is_unchanged() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/metrics-exposition.txt");
    let text = exposition_on_fixed_figures();
    if std::env::var_os("MCPTAP_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &text).expect("bless");
    }
    let want = std::fs::read_to_string(&path).expect("tests/data/metrics-exposition.txt");
    let (got_lines, want_lines): (Vec<_>, Vec<_>) =
        (text.lines().collect(), want.lines().collect());
    for (i, (g, w)) in got_lines.iter().zip(&want_lines).enumerate() {
        assert_eq!(g, w, "line {}", i + 1);
    }
    assert_eq!(got_lines.len(), want_lines.len(), "line count");
}

/// Connects and sends the start of a request head that never ends.
async fn slow_client(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    s
}

/// True when the server closed `s` (EOF or reset) within `limit`.
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_time_out_and_the_cap_closes_the_oldest() {
    let limits = admin::AdminLimits {
        max_connections: 4,
        header_read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_secs(30),
    };
    let state = AdminState::new();
    let server = admin::serve_with("127.0.0.1:0".parse().expect("addr"), state.clone(), limits)
        .await
        .expect("serve");
    let addr = server.local_addr();
    let mut slow = Vec::new();
    for _ in 0..4 {
        slow.push(slow_client(addr).await);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The cap is full of slow heads: a fifth connection closes the oldest one...
    let mut fifth = slow_client(addr).await;
    assert!(
        closed_within(&mut slow[0], Duration::from_millis(300)).await,
        "oldest closed at the cap"
    );
    assert!(
        !closed_within(&mut slow[3], Duration::from_millis(50)).await,
        "newer ones stay"
    );
    // ...and a probe still gets its answer while the slow ones hold the rest.
    let (st, _, body) = get(addr, "/healthz").await;
    assert_eq!((st, body.as_str()), (200, "ok\n"));
    // The header-read timeout closes every head that never ends.
    for s in slow.iter_mut().skip(1).chain(std::iter::once(&mut fifth)) {
        assert!(
            closed_within(s, Duration::from_secs(2)).await,
            "slow head closed by the timeout"
        );
    }
    // A head over the 8 KiB cap is refused, not buffered.
    let mut big = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    let _ = big.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), big.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Every close is counted by reason.
    let m = parse_exposition(&state.render_metrics().expect("encode"));
    let closed = |r: &str| {
        value(
            &m,
            "mcptap_admin_connections_closed_total",
            &[("reason", r)],
        )
    };
    // The fifth closed the first, the probe the second (the cap was full
    // again); the other three ran into the header-read timeout.
    assert_eq!(closed("max_connections"), 2.0);
    assert_eq!(closed("header_read_timeout"), 3.0);
    assert_eq!(closed("idle_timeout"), 0.0);
    // 5 slow, the probe, the oversized head.
    assert_eq!(value(&m, "mcptap_admin_connections_total", &[]), 7.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let limits = admin::AdminLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_millis(400),
    };
    let state = AdminState::new();
    let server = admin::serve_with("127.0.0.1:0".parse().expect("addr"), state.clone(), limits)
        .await
        .expect("serve");
    let addr = server.local_addr();
    let t = std::time::Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "silent connection closed"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(350),
        "not before the idle timeout: {:?}",
        t.elapsed()
    );
    // A keep-alive connection is served, then closed once idle.
    let mut ka = tokio::net::TcpStream::connect(addr).await.expect("connect");
    ka.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = ka.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut ka, Duration::from_secs(3)).await,
        "idle keep-alive closed"
    );
    let m = parse_exposition(&state.render_metrics().expect("encode"));
    let closed = |r: &str| {
        value(
            &m,
            "mcptap_admin_connections_closed_total",
            &[("reason", r)],
        )
    };
    assert_eq!(closed("idle_timeout"), 2.0);
    assert_eq!(value(&m, "mcptap_admin_connections_open", &[]), 0.0);
    server.stop().await;
}

#[test]
fn admin_limits_from_flags() {
    let l = admin::AdminLimits::from_flags(10, 2.5, 30.0).expect("valid");
    assert_eq!(l.max_connections, 10);
    assert_eq!(l.header_read_timeout, Duration::from_millis(2500));
    assert_eq!(l.idle_timeout, Duration::from_secs(30));
    for (h, i, flag) in [
        (0.0, 1.0, "--admin-header-read-timeout"),
        (-1.0, 1.0, "--admin-header-read-timeout"),
        (1.0, f64::NAN, "--admin-idle-timeout"),
        (1.0, f64::INFINITY, "--admin-idle-timeout"),
    ] {
        let e = admin::AdminLimits::from_flags(10, h, i).expect_err("invalid");
        assert!(format!("{e:#}").contains(flag), "{e:#}");
    }
}
