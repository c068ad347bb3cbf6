//! Secrets: credentials planted in request and response headers, the URL query,
//! tool arguments, `_meta`, results, SSE progress notifications, a handle value
//! and a JSON-RPC error message (a synthetic capture built here), plus the real
//! fixture's planted `sk-test-SECRET123` / `SECRET123`, must appear in no output:
//! the OTLP/JSON spans, the collector's logs (stderr with `RUST_LOG=debug`),
//! `/metrics`, and the ClickHouse rows. With `--capture-bodies` the bodies are
//! exported but every credential in them is `[REDACTED]` (and a plain argument
//! value is there, so the check is not vacuous).
//!
//! The analyzer's API answers, `/metrics`, page and logs (`mcptap-analyzer serve` over
//! the same ClickHouse rows) are checked too: its binary must be in the same target dir
//! (`cargo build -p mcptap-analyzer`, done when the workspace is built); without it
//! the test fails (a security test that skips proves nothing).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::path::Path;
use support::*;

const T0: u64 = 1_750_000_000 * 1_000_000_000;

/// Every credential planted in the synthetic capture.
const SECRETS: &[&str] = &[
    "sk-plant-A1",                                    // Authorization: Bearer
    "plant-C2",                                       // Cookie
    "plant-X3",                                       // X-Api-Key
    "plant-P4",                                       // Proxy-Authorization
    "plant-Q5",                                       // URL query access_token
    "plant-K6",                                       // arguments.api_key
    "plant-K7",                                       // arguments.password
    "plant-K8",                                       // arguments.config.client_secret
    "plant-K9",                                       // arguments.note = "Bearer plant-K9"
    "ghp_plantK10",                                   // arguments.gh (GitHub token shape)
    "plant-M11",                                      // _meta.auth_token
    "plant-M12",                                      // _meta.authorization
    "plant-R13",                                      // structuredContent.access_token
    "sk-plant-R14",                                   // content text word starting with sk-
    "plant-S15",                                      // Set-Cookie
    "sk-plant-H16",   // handle value (api_key_id) that looks like a credential
    "plant-E17",      // SSE result token
    "plant-N18",      // progress notification params.password
    "sk-plant-ERR19", // JSON-RPC error message
    "plant-L20",      // legacy request: Cookie + Authorization on a session request
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudCJ9.c2ln", // JWT in arguments.assertion_jwt
];

/// A plain (non-credential) argument value: exported only with --capture-bodies.
const PLAIN: &str = "plant-PLAIN-value";

/// The fixture's planted secrets (tests/fixtures/README.md).
const FIXTURE_SECRETS: &[&str] = &["sk-test-SECRET123", "SECRET123"];

fn server() -> std::net::SocketAddrV4 {
    ep(0, 0, 2, 8000)
}

fn build() -> Pcap {
    let mut p = Pcap::new();
    // 1. Modern tools/call with credentials in headers, query, arguments, _meta, result.
    let mut c = Conn::open(&mut p, T0, ep(1, 0, 0, 1), server());
    let body = tools_call(
        1,
        "lookup",
        &format!(
            r#"{{"api_key":"plant-K6","password":"plant-K7","config":{{"client_secret":"plant-K8","region":"eu"}},"note":"Bearer plant-K9","gh":"ghp_plantK10","api_key_id":"sk-plant-H16","assertion_jwt":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudCJ9.c2ln","query":"{PLAIN}","basket_id":"bsk-ok-1"}}"#
        ),
        r#","auth_token":"plant-M11","authorization":"Bearer plant-M12""#,
    );
    let mut req = post(
        &[
            "MCP-Protocol-Version: 2026-07-28",
            "Mcp-Method: tools/call",
            "Mcp-Name: lookup",
            "Authorization: Bearer sk-plant-A1",
            "Cookie: sid=plant-C2; theme=dark",
            "X-Api-Key: plant-X3",
            "Proxy-Authorization: Basic plant-P4",
            "User-Agent: secrets-test/1.0",
        ],
        &body,
    );
    let q = b"POST /mcp?access_token=plant-Q5 HTTP/1.1";
    req.splice(0..b"POST /mcp HTTP/1.1".len(), q.iter().copied());
    c.send(&mut p, T0 + 100, &req);
    c.reply(
        &mut p,
        T0 + 200,
        &json_response(
            &["Set-Cookie: sid=plant-S15; HttpOnly"],
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"your key is sk-plant-R14"}],"structuredContent":{"access_token":"plant-R13","order_id":"ord-7"},"isError":false}}"#,
        ),
    );
    // 2. Same connection: SSE response with a progress notification and a token in the result.
    let body = tools_call(2, "stream", "{}", r#","progressToken":"pt""#);
    c.send(
        &mut p,
        T0 + 300,
        &post(
            &[
                "MCP-Protocol-Version: 2026-07-28",
                "Mcp-Method: tools/call",
                "Mcp-Name: stream",
                "Authorization: Bearer sk-plant-A1",
            ],
            &body,
        ),
    );
    let sse = concat!(
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":\"pt\",\"progress\":1,\"message\":\"step\",\"password\":\"plant-N18\"}}\r\n\r\n",
        "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[],\"structuredContent\":{\"token\":\"plant-E17\"}}}\r\n\r\n",
    );
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
        sse.len()
    )
    .into_bytes();
    resp.extend_from_slice(sse.as_bytes());
    c.reply(&mut p, T0 + 400, &resp);
    // 3. Same connection: a JSON-RPC error whose message echoes a credential.
    c.send(
        &mut p,
        T0 + 500,
        &post(
            &[
                "MCP-Protocol-Version: 2026-07-28",
                "Mcp-Method: tools/call",
                "Mcp-Name: lookup",
            ],
            &tools_call(3, "lookup", "{}", ""),
        ),
    );
    c.reply(
        &mut p,
        T0 + 600,
        &json_response(
            &[],
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"invalid api key sk-plant-ERR19","data":{"token":"plant-R13"}}}"#,
        ),
    );
    c.close(&mut p, T0 + 700);
    // 4. A legacy session request with cookie and authorization headers.
    let mut c = Conn::open(&mut p, T0 + 1000, ep(1, 0, 0, 2), server());
    c.send(
        &mut p,
        T0 + 1100,
        &post(
            &[
                "MCP-Protocol-Version: 2025-11-25",
                "Mcp-Session-Id: 0123456789abcdef",
                "Authorization: Bearer plant-L20",
                "Cookie: plant-L20",
            ],
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}"#,
        ),
    );
    c.reply(
        &mut p,
        T0 + 1200,
        &json_response(
            &["mcp-session-id: 0123456789abcdef"],
            r#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}"#,
        ),
    );
    c.close(&mut p, T0 + 1300);
    p
}

/// Panics naming `what` if any of `secrets` occurs in `text`.
fn assert_absent(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        if let Some(i) = text.find(s) {
            let from = text[..i]
                .char_indices()
                .rev()
                .nth(120)
                .map_or(0, |(j, _)| j);
            let ctx: String = text[from..].chars().take(240 + s.len()).collect();
            panic!("secret {s:?} leaked into {what}: …{ctx}…");
        }
    }
}

/// Runs the collector on `pcap` (through a FIFO, RUST_LOG=debug, /metrics scraped)
/// and checks the OTLP/JSON output, stderr and /metrics. Returns the OTLP/JSON text.
fn check_outputs(dir: &Path, pcap: &Pcap, extra: &[&str], secrets: &[&str]) -> String {
    let out = dir.join("spans.jsonl");
    let _ = std::fs::remove_file(&out);
    let mut args = vec![
        "--output".to_string(),
        format!("otlp-json={}", out.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = run_fifo(dir, pcap, &args, &[("RUST_LOG", "debug")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spans = std::fs::read_to_string(&out).expect("spans");
    assert!(!spans.is_empty());
    assert_absent("the OTLP/JSON output", &spans, secrets);
    assert_absent("the logs (RUST_LOG=debug)", &r.stderr, secrets);
    assert_absent("/metrics", &r.metrics, secrets);
    spans
}

#[test]
fn planted_credentials_appear_in_no_output() {
    let dir = TempDir::new("secrets");
    let pcap = build();
    let spans = check_outputs(&dir.0, &pcap, &[], SECRETS);
    if std::env::var_os("SECRETS_DEBUG").is_some() {
        eprintln!("{spans}");
    }
    assert_absent("the OTLP/JSON output", &spans, &[PLAIN]);
    let names: Vec<_> = support::spans(&spans)
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "tools/call lookup",
            "tools/call stream",
            "tools/call lookup",
            "tools/list"
        ],
        "every exchange decoded"
    );
    // The handle kept in clear is there; the credential-looking one is redacted.
    assert!(
        spans.contains("bsk-ok-1") && spans.contains("ord-7"),
        "{spans}"
    );
    assert!(
        spans.contains("[REDACTED]"),
        "api_key_id handle redacted: {spans}"
    );

    // With --capture-bodies the bodies are exported, credentials redacted.
    let spans = check_outputs(&dir.0, &pcap, &["--capture-bodies"], SECRETS);
    assert!(spans.contains(PLAIN), "bodies captured: {spans}");
    assert!(spans.contains("[REDACTED]"));
    assert!(spans.contains("mcptap.request.body") && spans.contains("mcptap.notification.body"));
}

#[test]
fn fixture_secrets_appear_in_no_output() {
    let dir = TempDir::new("secrets-fixture");
    let bytes = std::fs::read(support::fixture("cutover.pcap")).expect("fixture");
    // run_fifo wants a Pcap; the fixture is one already (ns, Ethernet).
    let frames = {
        let mut n = 0u64;
        let mut off = 24usize;
        let mut last = 0u64;
        while off + 16 <= bytes.len() {
            let sec = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as u64;
            let ns = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as u64;
            last = last.max(sec * 1_000_000_000 + ns);
            let incl = u32::from_le_bytes(bytes[off + 8..off + 12].try_into().unwrap()) as usize;
            off += 16 + incl;
            n += 1;
        }
        (n, last)
    };
    let pcap = Pcap {
        bytes,
        frames: frames.0,
        last_ts: frames.1,
    };
    check_outputs(&dir.0, &pcap, &[], FIXTURE_SECRETS);
    let spans = check_outputs(&dir.0, &pcap, &["--capture-bodies"], FIXTURE_SECRETS);
    assert!(spans.contains("[REDACTED]"));
}

/// `mcptap-analyzer` next to the collector binary (cargo builds both into the same
/// target dir when the workspace is built). Panics, naming the build command, when
/// it is not there.
fn analyzer_bin() -> std::path::PathBuf {
    let p = Path::new(BIN)
        .parent()
        .expect("the collector binary has a directory")
        .join("mcptap-analyzer");
    assert!(
        p.is_file(),
        "no mcptap-analyzer next to {BIN}: run `cargo build -p mcptap-analyzer` first \
         (the analyzer part of this security test must not be skipped)"
    );
    p
}

/// Runs `mcptap-analyzer serve` on `db` (window pinned around the synthetic capture,
/// bearer token), fetches every API answer, `/metrics` and the page, and checks that no
/// secret is in them. Returns how many answers were checked.
fn check_analyzer(bin: &Path, front: &support::Front, db: &str, secrets: &[&str]) -> usize {
    use std::io::BufRead;
    let token = "analyzer-test-token";
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .args(["--clickhouse-url", &front.url, "--database", db])
        .args(["--listen", "127.0.0.1:0", "--bearer-token", token])
        .args(["--until", "2025-06-15T15:00:00Z", "--window", "2h"])
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mcptap-analyzer serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.split("serving on http://").nth(1) {
                let _ = tx.send(addr.trim_end_matches('/').to_string());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("analyzer serving");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let auth = format!("Authorization: Bearer {token}");
    let t = std::time::Instant::now();
    while http_get(port, "/readyz").is_none_or(|b| !b.starts_with("ready"))
        && t.elapsed().as_secs() < 60
    {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut paths: Vec<String> = [
        "/",
        "/app.js",
        "/metrics",
        "/api/v1/findings",
        "/api/v1/readiness",
        "/api/v1/rules",
        "/api/v1/findings?since=2025-06-15T13:00:00Z&until=2025-06-15T15:00:00Z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let traces = front.q(&format!("SELECT DISTINCT TraceId FROM {db}.otel_traces"));
    paths.extend(
        traces
            .lines()
            .map(|t| format!("/api/v1/traces/{}", t.trim())),
    );
    let (code, findings) = http_get_with(port, "/api/v1/findings", &[&auth]).unwrap();
    assert_eq!(code, 200, "{findings}");
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&findings) {
        for f in v["findings"].as_array().into_iter().flatten() {
            if let Some(id) = f["id"].as_str() {
                paths.push(format!("/api/v1/findings/{id}"));
            }
        }
    }
    let (_, rules) = http_get_with(port, "/api/v1/rules", &[&auth]).unwrap();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&rules) {
        for r in v["rules"].as_array().into_iter().flatten() {
            if let Some(id) = r["id"].as_str() {
                paths.push(format!("/api/v1/rules/{id}/series"));
            }
        }
    }
    let mut checked = 0;
    for p in &paths {
        // A transport failure (no complete response) is retried twice; if the
        // analyzer still does not answer, the failure shows its log tail.
        let mut answer = None;
        for attempt in 0..3 {
            answer = http_get_with(port, p, &[&auth]);
            if answer.is_some() {
                break;
            }
            eprintln!("GET {p}: no complete response (attempt {attempt})");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let Some((code, body)) = answer else {
            let exited = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            let logs = logs.join().unwrap_or_default();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            panic!(
                "the analyzer did not answer GET {p} (process exit status: {exited:?}); its last log lines, newest first:\n{}",
                tail.join("\n")
            );
        };
        assert!(code < 500, "{p}: {code} {body}");
        assert_absent(&format!("the analyzer's {p}"), &body, secrets);
        if p.starts_with("/api/v1/traces/") {
            assert!(
                body.contains("tools/"),
                "the trace's spans are there: {body}"
            );
        }
        checked += 1;
    }
    let _ = child.kill();
    let _ = child.wait();
    let logs = logs.join().unwrap();
    assert_absent("the analyzer's logs", &logs, secrets);
    checked
}

#[test]
fn planted_credentials_appear_in_no_clickhouse_row() {
    let front = support::Front::start();
    let dir = TempDir::new("secrets-ch");
    let p = dir.join("secrets.pcap");
    std::fs::write(&p, build().bytes).expect("write capture");
    for (tag, extra) in [("plain", &[][..]), ("bodies", &["--capture-bodies"][..])] {
        let db = support::unique_db(&format!("secrets_{tag}"));
        support::apply_schema(&front, &db);
        let spool = dir.join(&format!("spool-{tag}"));
        let (code, _out, err) = support::run(
            support::collector()
                .arg("--pcap")
                .arg(&p)
                .args(["--clickhouse-url", &front.url, "--clickhouse-database", &db])
                .arg("--spool-dir")
                .arg(&spool)
                .args(extra)
                .env("RUST_LOG", "debug"),
        );
        assert_eq!(code, 0, "{err}");
        assert_absent("the collector's logs", &err, SECRETS);
        let rows = front.q(&format!(
            "SELECT * FROM {db}.otel_traces ORDER BY Timestamp FORMAT TabSeparatedRaw"
        ));
        assert_eq!(rows.lines().count(), 4, "{rows}");
        assert_absent(&format!("ClickHouse rows ({tag})"), &rows, SECRETS);
        if extra.is_empty() {
            assert_absent("ClickHouse rows", &rows, &[PLAIN]);
        } else {
            assert!(
                rows.contains(PLAIN) && rows.contains("[REDACTED]"),
                "{rows}"
            );
        }
        let n = check_analyzer(&analyzer_bin(), &front, &db, SECRETS);
        assert!(n > 0, "no analyzer answer checked ({tag})");
        eprintln!("analyzer ({tag}): {n} answers checked");
    }
}
