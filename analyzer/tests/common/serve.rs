//! `serve` test helpers: the fixture loaded into a fresh database, the `mcptap-analyzer serve`
//! binary started on a free loopback port (killed on drop), and small HTTP helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The fixture capture's range.
pub const SINCE: &str = "2026-11-21T05:50:00Z";
/// End of the fixture capture's range.
pub const UNTIL: &str = "2026-11-21T06:00:00Z";

/// A fresh database with `cutover.pcap` loaded through the collector; `(url, database)`.
pub async fn loaded(tag: &str) -> (String, String) {
    let url = super::clickhouse_url();
    let database = super::fresh_database(tag);
    super::create_schema(&url, &database, "otel_traces", true).await;
    let rows = super::otlp_to_rows(&super::fixture_otlp("cutover.pcap"), &|_| true);
    super::insert_rows(&url, &database, "otel_traces", &rows).await;
    (url, database)
}

/// A running `mcptap-analyzer serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve` on the fixture window (pinned `--until`) with `extra` flags and waits until
/// `/readyz` answers 200.
pub fn start(url: &str, database: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
        .args([
            "serve",
            "--clickhouse-url",
            url,
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--until",
            UNTIL,
            "--window",
            "10m",
            "--interval",
            "1h",
        ])
        .args(extra)
        .env_remove("CLICKHOUSE_URL")
        .env_remove("MCPTAP_ANALYZER_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(rest) = line.strip_prefix("mcptap-analyzer: serving on ") {
                let _ = tx.send(rest.trim_end_matches('/').to_string());
                sent = true;
            }
            eprintln!("[serve] {line}");
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve did not print its address");
    let server = Server { child, base };
    let t = Instant::now();
    loop {
        if let Ok(r) = raw::blocking_get(&format!("{}/readyz", server.base))
            && r == 200
        {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "serve never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server
}

/// Minimal blocking GET status (no reqwest blocking feature): HTTP/1.1 over a TcpStream.
mod raw {
    use std::io::{Read, Write};
    pub fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut s = std::net::TcpStream::connect(host)?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        Ok(buf
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    }
}
