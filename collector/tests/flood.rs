//! Floods: a synthetic capture with a SYN flood (100k half-open connections),
//! slowloris connections whose request heads never end, one endless request head,
//! one request body far over `--max-body-bytes`, one SSE response streaming 8 MiB
//! that never ends, and healthy MCP exchanges interleaved through all of it.
//!
//! The collector reads the capture through a FIFO with `--admin-addr`, so at the
//! end of input it is still running: the test scrapes `/metrics` then (every drop
//! counted by reason), reads the process's peak RSS (`VmHWM`) and compares it with
//! the documented bound, then closes the FIFO and checks the spans of the healthy
//! exchanges in the OTLP/JSON output. Two configurations: tight caps
//! (`--max-flows 1000`, short idle timeout, 64 KiB bodies) and the defaults with
//! room for every flow (`--max-flows 200000`: 100k+ concurrent connections).
//!
//! Bounds (debug build, measured on the CI machine, with ~2x headroom; see SECURITY.md):
//! tight caps under 64 MiB peak RSS; 100k concurrent half-open flows under 512 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use support::*;

const T0: u64 = 1_700_000_000 * 1_000_000_000;
const MS: u64 = 1_000_000;
const SERVER_PORT: u16 = 8000;
const HEALTHY: u64 = 40;
const SSE_BYTES: usize = 8 << 20;
const HUGE_BODY: usize = 4 << 20;

struct Flood {
    pcap: Pcap,
    syn: u64,
    slow: u64,
}

fn server() -> std::net::SocketAddrV4 {
    ep(0, 0, 2, SERVER_PORT)
}

/// One complete modern tools/call exchange on its own connection (contiguous frames).
fn healthy(p: &mut Pcap, ts: u64, k: u64) {
    let tool = format!("healthy_{k}");
    let h = modern_headers(&tool);
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    let mut c = Conn::open(p, ts, ep(9, 0, k as u8, 50000), server());
    c.send(
        p,
        ts + 30,
        &post(&hs, &tools_call(k, &tool, r#"{"basket_id":"bsk-1"}"#, "")),
    );
    c.reply(
        p,
        ts + 40,
        &json_response(
            &[],
            &format!(
                r#"{{"jsonrpc":"2.0","id":{k},"result":{{"content":[{{"type":"text","text":"ok {k}"}}],"isError":false}}}}"#
            ),
        ),
    );
    c.close(p, ts + 50);
}

fn build(syn: u64, slow: u64) -> Flood {
    let mut p = Pcap::new();
    let srv = server();
    // Slowloris: heads started, trickled twice, never finished (t = 0 .. 1.5 s).
    let mut slow_conns = Vec::new();
    for i in 0..slow {
        let t = T0 + i * 100_000;
        let mut c = Conn::open(&mut p, t, ep(50, (i >> 8) as u8, i as u8, 40000), srv);
        c.send(&mut p, t + 50, b"POST /mcp HTTP/1.1\r\nHost: a\r\nX-Slow-");
        slow_conns.push(c);
    }
    for (i, c) in slow_conns.iter_mut().enumerate() {
        c.send(&mut p, T0 + 1000 * MS + i as u64 * 100_000, b"0: a\r\n");
    }
    // One endless head: 512 KiB of header lines, no blank line.
    let mut c = Conn::open(&mut p, T0 + 1500 * MS, ep(60, 0, 0, 1), srv);
    let line = format!("X-Pad: {}\r\n", "a".repeat(100));
    let mut head = b"POST /mcp HTTP/1.1\r\n".to_vec();
    while head.len() < 512 * 1024 {
        head.extend_from_slice(line.as_bytes());
    }
    c.send(&mut p, T0 + 1500 * MS + 100, &head);
    // SYN flood over 10 s, healthy exchanges spread through it.
    let every = (syn / HEALTHY).max(1);
    let mut k = 0;
    for i in 0..syn {
        let t = T0 + 2000 * MS + i * 100_000;
        let src = ep(100 + (i >> 16) as u8, (i >> 8) as u8, i as u8, 40000);
        p.push(t, &frame(src, srv, 7, 0, SYN, b""));
        if i % every == every / 2 && k < HEALTHY - 1 {
            healthy(&mut p, t + 1, k);
            k += 1;
        }
    }
    // A body far over --max-body-bytes (t = 13 s), answered normally.
    let t = T0 + 13_000 * MS;
    let mut c = Conn::open(&mut p, t, ep(61, 0, 0, 1), srv);
    let big = tools_call(
        5000,
        "upload",
        &format!(r#"{{"blob":"{}"}}"#, "b".repeat(HUGE_BODY)),
        "",
    );
    let h = modern_headers("upload");
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    c.send(&mut p, t + 100, &post(&hs, &big));
    c.reply(
        &mut p,
        t + 200,
        &json_response(
            &[],
            r#"{"jsonrpc":"2.0","id":5000,"result":{"content":[]}}"#,
        ),
    );
    c.close(&mut p, t + 300);
    // An SSE response that streams 8 MiB of progress events and never ends (t = 14 s).
    let t = T0 + 14_000 * MS;
    let mut c = Conn::open(&mut p, t, ep(62, 0, 0, 1), srv);
    let h = modern_headers("stream");
    let hs: Vec<&str> = h.iter().map(String::as_str).collect();
    c.send(
        &mut p,
        t + 100,
        &post(
            &hs,
            &tools_call(6000, "stream", "{}", r#","progressToken":"p1""#),
        ),
    );
    c.reply(
        &mut p,
        t + 200,
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n",
    );
    let mut sent = 0usize;
    let mut n = 0u64;
    let mut buf = Vec::new();
    while sent < SSE_BYTES {
        let ev = format!(
            "event: message\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":\"p1\",\"progress\":{n}}}}}\r\n\r\n"
        );
        buf.extend_from_slice(ev.as_bytes());
        n += 1;
        if buf.len() >= 64 * 1024 {
            sent += buf.len();
            c.reply(&mut p, t + 300 + n, &buf);
            buf.clear();
        }
    }
    // The last healthy exchange, after every flood.
    healthy(&mut p, T0 + 15_000 * MS, HEALTHY - 1);
    Flood { pcap: p, syn, slow }
}

fn summary_field(stderr: &str, key: &str) -> u64 {
    let i = stderr
        .find(&format!("{key} "))
        .unwrap_or_else(|| panic!("no `{key}` in the summary: {stderr}"));
    stderr[i + key.len() + 1..]
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("bad `{key}` in the summary"))
}

fn check_healthy(out: &str) {
    let spans = spans(out);
    for k in 0..HEALTHY {
        let name = format!("tools/call healthy_{k}");
        let s = spans
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no span {name} among {} spans", spans.len()));
        assert_eq!(
            attr(s, "jsonrpc.request.id").as_deref(),
            Some(&*k.to_string())
        );
        assert_eq!(attr(s, "http.response.status_code").as_deref(), Some("200"));
        assert_eq!(
            attr(s, "gen_ai.tool.name").as_deref(),
            Some(&*format!("healthy_{k}"))
        );
        assert_eq!(attr(s, "mcptap.era").as_deref(), Some("modern"));
    }
}

#[test]
fn flood_with_tight_caps_is_bounded_counted_and_keeps_healthy_flows() {
    let dir = TempDir::new("flood-tight");
    let f = build(100_000, 2000);
    let out = dir.join("spans.jsonl");
    let r = run_fifo(
        &dir.0,
        &f.pcap,
        &[
            "--max-flows",
            "1000",
            "--idle-timeout",
            "5",
            "--max-body-bytes",
            "65536",
            "--max-pending",
            "1000",
            "--output",
            &format!("otlp-json={}", out.display()),
        ],
        &[],
    );
    let m = &r.metrics;
    let g = |s: &str| metric(m, s);
    eprintln!(
        "tight caps: {} frames, peak RSS {} KiB; opened {} evicted {} idle {} fin {} bodies truncated {} sse events {} http parse errors {} incomplete {}",
        f.pcap.frames,
        r.hwm_kib,
        g("mcptap_flows_opened_total"),
        g(r#"mcptap_flows_closed_total{reason="evicted"}"#),
        g(r#"mcptap_flows_closed_total{reason="idle_timeout"}"#),
        g(r#"mcptap_flows_closed_total{reason="fin_rst"}"#),
        g("mcptap_http_bodies_truncated_total"),
        g("mcptap_sse_events_total"),
        g("mcptap_http_parse_errors_total"),
        g(r#"mcptap_decode_errors_total{stage="http_incomplete"}"#),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let opened = g("mcptap_flows_opened_total");
    let total = (f.syn + f.slow + HEALTHY + 3) as f64;
    // Slowloris connections evicted before their second trickle are tracked again (mid-stream).
    assert!(
        opened >= total,
        "every connection tracked: {opened} < {total}"
    );
    let evicted = g(r#"mcptap_flows_closed_total{reason="evicted"}"#);
    let idle = g(r#"mcptap_flows_closed_total{reason="idle_timeout"}"#);
    let fin = g(r#"mcptap_flows_closed_total{reason="fin_rst"}"#);
    assert!(evicted >= 90_000.0, "evicted {evicted}");
    assert_eq!(
        fin,
        (HEALTHY + 1) as f64,
        "healthy + huge-body connections closed"
    );
    assert!(g("mcptap_flows_open") <= 1000.0);
    assert!(
        opened - evicted - idle - fin <= 1000.0,
        "every closed flow counted by reason"
    );
    assert!(g("mcptap_http_bodies_truncated_total") >= 1.0);
    assert!(g("mcptap_sse_events_total") >= 50_000.0);
    assert!(
        g(r#"mcptap_decode_errors_total{stage="http_incomplete"}"#) >= f.slow as f64,
        "every slowloris head cut by eviction is counted"
    );
    assert!(
        g("mcptap_http_parse_errors_total") >= 1.0,
        "the endless head hit the head cap"
    );
    assert!(
        r.hwm_kib > 0 && r.hwm_kib < 64 * 1024,
        "peak RSS {} KiB over the 64 MiB bound",
        r.hwm_kib
    );
    // The end-of-run summary tells the same story.
    assert!(
        summary_field(&r.stderr, "evicted-flows") >= 90_000,
        "{}",
        r.stderr
    );
    assert!(summary_field(&r.stderr, "truncated-bodies") >= 1);
    check_healthy(&std::fs::read_to_string(&out).expect("spans"));
}

#[test]
fn hundred_thousand_concurrent_flows_fit_the_documented_bound() {
    let dir = TempDir::new("flood-wide");
    let f = build(100_000, 5000);
    let out = dir.join("spans.jsonl");
    let r = run_fifo(
        &dir.0,
        &f.pcap,
        &[
            "--max-flows",
            "200000",
            "--output",
            &format!("otlp-json={}", out.display()),
        ],
        &[],
    );
    let m = &r.metrics;
    let g = |s: &str| metric(m, s);
    eprintln!(
        "100k concurrent: {} frames, peak RSS {} KiB; open {} evicted {} bodies truncated {} sse events {}",
        f.pcap.frames,
        r.hwm_kib,
        g("mcptap_flows_open"),
        g(r#"mcptap_flows_closed_total{reason="evicted"}"#),
        g("mcptap_http_bodies_truncated_total"),
        g("mcptap_sse_events_total"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        g("mcptap_flows_open") >= (f.syn + f.slow) as f64,
        "all flood connections tracked at once"
    );
    assert_eq!(g(r#"mcptap_flows_closed_total{reason="evicted"}"#), 0.0);
    assert!(
        g("mcptap_http_bodies_truncated_total") >= 1.0,
        "4 MiB > 1 MiB default cap"
    );
    assert!(
        r.hwm_kib > 0 && r.hwm_kib < 512 * 1024,
        "peak RSS {} KiB over the 512 MiB bound",
        r.hwm_kib
    );
    check_healthy(&std::fs::read_to_string(&out).expect("spans"));
}
