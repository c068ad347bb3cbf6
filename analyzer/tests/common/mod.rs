//! Test harness shared by the analyzer's integration tests and benches: a real ClickHouse
//! (`CLICKHOUSE_URL`, else the chDB HTTP front `tools/chfront` started on a free port), the
//! `otel_traces` schema from `deploy/clickhouse/migrations` (single-node files, placeholders
//! substituted as the schema runner does), and spans from the collector's OTLP/JSON output
//! loaded as the ClickHouse exporter stores them (attributes as strings, StrArray as JSON
//! array text).
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

pub mod ground_truth;
pub mod serve;

use mcptap_analyzer::clickhouse::{Db, Source};
use mcptap_analyzer::timeutil::format_rfc3339_ns;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The cargo target directory of this build (`CARGO_TARGET_TMPDIR`'s parent).
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh empty directory under the system temp dir, unique per process and call
/// (`mcptap-analyzer-<tag>-<pid>-<n>`); the caller removes it.
pub fn temp_dir(tag: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "mcptap-analyzer-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A TCP port free on loopback at the time of the call.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Front {
    url: String,
    _child: Option<Child>,
}

static FRONT: OnceLock<Mutex<Option<Front>>> = OnceLock::new();

fn ping(url: &str) -> bool {
    let Some(hostport) = url.strip_prefix("http://") else {
        return false;
    };
    let hostport = hostport.trim_end_matches('/');
    let Ok(mut s) = std::net::TcpStream::connect(hostport) else {
        return false;
    };
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(
        format!("GET /ping HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("Ok.")
}

/// The ClickHouse URL for tests: `CLICKHOUSE_URL`, else a chfront started once per test binary
/// on a free port with a temporary data dir (stopped and removed when the test process exits).
pub fn clickhouse_url() -> String {
    if let Ok(u) = std::env::var("CLICKHOUSE_URL") {
        return u;
    }
    let m = FRONT.get_or_init(|| Mutex::new(None));
    let mut g = m.lock().unwrap();
    if let Some(f) = g.as_ref() {
        return f.url.clone();
    }
    let root = repo_root();
    let port = free_port();
    let data = temp_dir(&format!("chfront-{port}"));
    let py = root.join(".venv/bin/python");
    let start = root.join("tools/chfront/start.sh");
    // The front runs under a small shell that kills it when our stdin pipe closes, i.e. when
    // the test process exits (statics are never dropped).
    let front_cmd = if py.exists() {
        format!(
            "{} {} --port {port} --data-dir {} --quiet",
            py.display(),
            root.join("tools/chfront/chfront.py").display(),
            data.display()
        )
    } else if start.exists() {
        format!(
            "bash {} --port {port} --data-dir {}",
            start.display(),
            data.display()
        )
    } else {
        panic!("no ClickHouse: set CLICKHOUSE_URL or create the venv (tools/chfront/start.sh)");
    };
    let child = Command::new("bash")
        .arg("-c")
        .arg(format!("{front_cmd} </dev/null >/dev/null & pid=$!; read -r _; kill $pid; wait $pid; rm -rf {}", data.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the chDB front");
    let url = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    while !ping(&url) {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "chfront did not answer /ping at {url}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    *g = Some(Front {
        url: url.clone(),
        _child: Some(child),
    });
    url
}

static DB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh database name for one test.
pub fn fresh_database(tag: &str) -> String {
    format!(
        "mcptap_t_{tag}_{}_{}",
        std::process::id(),
        DB_SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// Splits a migration file into statements (`;` at the end of a line).
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        cur.push_str(line);
        cur.push('\n');
        if line.trim_end().ends_with(';') {
            let s = cur.trim().trim_end_matches(';').to_string();
            if s.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
            {
                out.push(s);
            }
            cur.clear();
        }
    }
    if cur
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    {
        out.push(cur.trim().to_string());
    }
    out
}

/// Applies the single-node migrations to `database`.`table`; with `mcptap_columns = false`
/// skips `0005_mcptap_columns.sql` (a bare exporter table).
pub async fn create_schema(url: &str, database: &str, table: &str, mcptap_columns: bool) {
    let client = clickhouse::Client::default().with_url(url);
    let dir = repo_root().join("deploy/clickhouse/migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        if f.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        if text.starts_with("-- mcptap: cluster-only") {
            continue;
        }
        if !mcptap_columns
            && f.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("mcptap_columns")
        {
            continue;
        }
        let text = text
            .replace("{{engine}}", "MergeTree()")
            .replace("{{agg_engine}}", "AggregatingMergeTree()")
            .replace("{{on_cluster}}", "")
            .replace("{{ttl}}", "")
            .replace("{{ttl_start}}", "")
            .replace("{{database}}", database)
            .replace("{{local_table}}", table)
            .replace("{{table}}", table);
        for st in statements(&text) {
            client
                .query_raw(&st)
                .execute()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}\n{st}", f.display()));
        }
    }
}

/// The attribute value as the ClickHouse exporter stores it (pdata AsString()).
fn any_value(v: &Value) -> String {
    if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        return s.to_string();
    }
    if let Some(i) = v.get("intValue") {
        return match i {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
    if let Some(b) = v.get("boolValue").and_then(Value::as_bool) {
        return b.to_string();
    }
    if let Some(d) = v.get("doubleValue") {
        return d.to_string();
    }
    if let Some(a) = v.get("arrayValue") {
        let items: Vec<Value> = a
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().map(|x| Value::String(any_value(x))).collect())
            .unwrap_or_default();
        return serde_json::to_string(&items).unwrap();
    }
    v.to_string()
}

fn attrs(list: Option<&Value>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for a in list.and_then(Value::as_array).into_iter().flatten() {
        let k = a
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        m.insert(
            k,
            Value::String(any_value(a.get("value").unwrap_or(&Value::Null))),
        );
    }
    m
}

fn ns(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap(),
        Some(Value::Number(n)) => n.as_i64().unwrap(),
        _ => 0,
    }
}

/// One exporter row (the 22 insert columns) per span of OTLP/JSON lines; `keep` filters spans
/// by their attribute map.
pub fn otlp_to_rows(
    otlp: &str,
    keep: &dyn Fn(&serde_json::Map<String, Value>) -> bool,
) -> Vec<Value> {
    let mut rows = Vec::new();
    for line in otlp.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).unwrap();
        for rs in doc["resourceSpans"].as_array().unwrap() {
            let res = attrs(rs["resource"].get("attributes"));
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    let sa = attrs(s.get("attributes"));
                    if !keep(&sa) {
                        continue;
                    }
                    let start = ns(s.get("startTimeUnixNano"));
                    let end = ns(s.get("endTimeUnixNano"));
                    let status = s.get("status");
                    let code = match status.and_then(|x| x.get("code")).and_then(Value::as_i64) {
                        Some(2) => "Error",
                        Some(1) => "Ok",
                        _ => "Unset",
                    };
                    let events = s
                        .get("events")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    rows.push(json!({
                        "Timestamp": format_rfc3339_ns(start),
                        "TraceId": s["traceId"],
                        "SpanId": s["spanId"],
                        "ParentSpanId": s.get("parentSpanId").cloned().unwrap_or(json!("")),
                        "TraceState": s.get("traceState").cloned().unwrap_or(json!("")),
                        "SpanName": s["name"],
                        "SpanKind": "Server",
                        "ServiceName": res.get("service.name").cloned().unwrap_or(json!("")),
                        "ResourceAttributes": res,
                        "ScopeName": ss["scope"].get("name").cloned().unwrap_or(json!("")),
                        "ScopeVersion": ss["scope"].get("version").cloned().unwrap_or(json!("")),
                        "SpanAttributes": sa,
                        "Duration": (end - start).max(0),
                        "StatusCode": code,
                        "StatusMessage": status.and_then(|x| x.get("message")).cloned().unwrap_or(json!("")),
                        "Events.Timestamp": events.iter().map(|e| Value::String(format_rfc3339_ns(ns(e.get("timeUnixNano"))))).collect::<Vec<_>>(),
                        "Events.Name": events.iter().map(|e| e["name"].clone()).collect::<Vec<_>>(),
                        "Events.Attributes": events.iter().map(|e| Value::Object(attrs(e.get("attributes")))).collect::<Vec<_>>(),
                        "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": [],
                    }));
                }
            }
        }
    }
    rows
}

/// Inserts exporter rows (JSONEachRow).
pub async fn insert_rows(url: &str, database: &str, table: &str, rows: &[Value]) {
    if rows.is_empty() {
        return;
    }
    let client = clickhouse::Client::default().with_url(url);
    let mut sql = format!(
        "INSERT INTO `{database}`.`{table}` SETTINGS date_time_input_format = 'best_effort' FORMAT JSONEachRow\n"
    );
    for r in rows {
        sql.push_str(&serde_json::to_string(r).unwrap());
        sql.push('\n');
    }
    client.query_raw(&sql).execute().await.unwrap();
}

/// The collector binary: `MCPTAP_COLLECTOR`, else built in this target dir.
pub fn collector_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MCPTAP_COLLECTOR") {
        return PathBuf::from(p);
    }
    let target = target_dir();
    let bin = target.join("debug/mcptap-collector");
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let st = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "mcptap-collector"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(st.success(), "building mcptap-collector failed");
    });
    bin
}

/// OTLP/JSON of a fixture pcap, decoded by the real collector.
pub fn fixture_otlp(pcap: &str) -> String {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, String>>> = OnceLock::new();
    let m = CACHE.get_or_init(|| Mutex::new(Default::default()));
    if let Some(v) = m.lock().unwrap().get(pcap) {
        return v.clone();
    }
    let out = Command::new(collector_bin())
        .arg("--pcap")
        .arg(repo_root().join("tests/fixtures").join(pcap))
        .args(["--output", "otlp-json", "--no-summary"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "collector failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    m.lock().unwrap().insert(pcap.to_string(), s.clone());
    s
}

/// A Db for the analyzer with columns detected.
pub async fn analyzer_db(url: &str, database: &str, table: &str) -> Db {
    let mut db = Db::new(&Source {
        url: url.to_string(),
        user: None,
        password: None,
        database: database.to_string(),
        table: table.to_string(),
    })
    .unwrap();
    db.detect_columns().await.unwrap();
    db
}

/// The fixture's ground truth.
pub fn truth(name: &str) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures").join(name)).unwrap(),
    )
    .unwrap()
}
