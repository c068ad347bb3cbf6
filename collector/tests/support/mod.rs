//! Test helpers of the collector crate, in one place: paths, temporary
//! directories, free ports, the collector binary, child processes killed on
//! drop, a small HTTP GET, Prometheus sample and `/proc` readers, and the span
//! readers of OTLP/JSON output; submodules for ClickHouse (`clickhouse`),
//! OTLP receivers (`otlp`), synthetic captures (`pcap`) and FIFO-fed runs
//! (`fifo`). Each test binary includes it with `mod support;` and uses what
//! it needs.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs
)]

pub mod clickhouse;
pub mod fifo;
pub mod otlp;
pub mod pcap;

pub use clickhouse::*;
pub use fifo::*;
pub use otlp::*;
pub use pcap::*;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The collector binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcptap-collector");

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the collector crate sits in the repository root")
        .to_owned()
}

/// `tests/fixtures/` of the repository.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// `tests/fixtures/<name>` of the repository.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// Numbers temporary directories and databases within one test binary.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh temporary directory `$TMPDIR/mcptap-test-<tag>-<pid>-<n>`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates it (removing a leftover of the same name first).
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "mcptap-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temporary directory");
        TempDir(p)
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The collector binary.
pub fn collector() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"));
    // The tests choose every setting; nothing from the caller's environment.
    for v in [
        "CLICKHOUSE_URL",
        "CLICKHOUSE_DATABASE",
        "CLICKHOUSE_USER",
        "CLICKHOUSE_PASSWORD",
        "MCPTAP_SPOOL_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "POD_NAME",
        "POD_NAMESPACE",
        "NODE_NAME",
    ] {
        c.env_remove(v);
    }
    c
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out: Output = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `f` until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// GET `path` from 127.0.0.1:`port`; the body, or None if not reachable.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    http_get_with(port, path, &[]).map(|(_, body)| body)
}

/// GET `path` from 127.0.0.1:`port` with extra header lines (`Name: value`);
/// (status code, body), or None if not reachable.
pub fn http_get_with(port: u16, path: &str, headers: &[&str]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// The value of a sample in a Prometheus exposition, e.g.
/// `metric(text, r#"mcptap_flows_closed_total{reason="evicted"}"#)`; 0 when absent.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, v) = l.rsplit_once(' ')?;
            (name == series).then(|| v.parse::<f64>().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Peak resident set size of a live process (`VmHWM` of /proc/PID/status), in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The body of a `Transfer-Encoding: chunked` message, de-chunked (stops at the
/// last chunk or at the first malformed size).
pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// Every span of an OTLP/JSON lines file.
pub fn spans(otlp_json: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in otlp_json.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("OTLP/JSON line");
        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    out
}

/// A string or int attribute of a span, as text.
pub fn attr(span: &Value, key: &str) -> Option<String> {
    span["attributes"].as_array()?.iter().find_map(|a| {
        (a["key"] == key).then(|| {
            let v = &a["value"];
            v["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["intValue"].as_str().map(str::to_string))
                .unwrap_or_else(|| v.to_string())
        })
    })
}
