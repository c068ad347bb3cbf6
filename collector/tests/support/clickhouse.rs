//! A local ClickHouse for the tests (the chDB front of `tools/chfront/`, or
//! `CLICKHOUSE_URL` when set), a tiny HTTP client for SQL, the schema, the
//! spool, and synthetic captures made of shifted copies of the real fixture.

use super::{COUNTER, TempDir, collector, dechunk, fixture, free_port, repo_root, run};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A database name unique to this test run (tests against `CLICKHOUSE_URL`
/// must not see each other's rows).
pub fn unique_db(tag: &str) -> String {
    format!(
        "mcptap_test_{tag}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The ClickHouse the tests talk to.
pub struct Front {
    pub url: String,
    pub port: u16,
    pub external: bool,
    data: Option<TempDir>,
    pidfile: PathBuf,
    extra: Vec<String>,
    running: bool,
}

impl Front {
    /// `CLICKHOUSE_URL` when set, else a chfront of our own.
    pub fn start() -> Front {
        match std::env::var("CLICKHOUSE_URL") {
            Ok(u) if !u.is_empty() => Front {
                url: u.trim_end_matches('/').to_owned(),
                port: 0,
                external: true,
                data: None,
                pidfile: PathBuf::new(),
                extra: Vec::new(),
                running: true,
            },
            _ => Front::start_own(&[]),
        }
    }

    /// A chfront of our own on a free port with a temporary data dir;
    /// `extra` goes to chfront.py (e.g. `--user u --password p`).
    pub fn start_own(extra: &[&str]) -> Front {
        let data = TempDir::new("chfront");
        let port = free_port();
        let mut f = Front {
            url: format!("http://127.0.0.1:{port}"),
            port,
            external: false,
            pidfile: data.path().join("chfront.pid"),
            data: Some(data),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            running: false,
        };
        f.launch();
        f
    }

    fn launch(&mut self) {
        let data = self.data.as_ref().unwrap().path().join("data");
        let mut cmd = Command::new("bash");
        cmd.arg(repo_root().join("tools/chfront/start.sh"))
            .args(["--port", &self.port.to_string()])
            .arg("--data-dir")
            .arg(&data)
            .arg("--background")
            .arg("--pidfile")
            .arg(&self.pidfile)
            .arg("--log")
            .arg(self.data.as_ref().unwrap().path().join("chfront.log"))
            .args(["--timeout", "120"]);
        let mut extra = vec!["--quiet".to_owned()];
        extra.extend(self.extra.iter().cloned());
        cmd.arg("--").args(&extra);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "chfront did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
    }

    /// Stops our chfront (SIGTERM through stop.sh), keeping its data dir.
    pub fn stop(&mut self) {
        if self.external || !self.running {
            return;
        }
        let _ = Command::new("bash")
            .arg(repo_root().join("tools/chfront/stop.sh"))
            .arg("--pidfile")
            .arg(&self.pidfile)
            .output();
        self.running = false;
    }

    /// Starts our chfront again on the same port and data dir.
    pub fn restart(&mut self) {
        assert!(!self.external);
        self.launch();
    }

    /// Runs `sql` (optionally with credentials) and returns the body; panics on an HTTP error.
    pub fn q(&self, sql: &str) -> String {
        let (code, body) = http_query(&self.url, sql, None);
        assert_eq!(code, 200, "query failed: {sql}\n{body}");
        body
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop();
    }
}

/// POSTs `sql` to a ClickHouse HTTP URL; returns (status, body).
pub fn http_query(url: &str, sql: &str, auth: Option<(&str, &str)>) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = TcpStream::connect(hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: {}\r\nConnection: close\r\n",
        sql.len()
    );
    if let Some((u, p)) = auth {
        head.push_str(&format!(
            "X-ClickHouse-User: {u}\r\nX-ClickHouse-Key: {p}\r\n"
        ));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(sql.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (code, body)
}

/// The collector replaying `pcap` into database `db` of the ClickHouse at `url`,
/// spooling under `spool`; the test adds its own flags.
pub fn replay_into(url: &str, db: &str, pcap: &Path, spool: &Path) -> Command {
    let mut c = collector();
    c.arg("--pcap")
        .arg(pcap)
        .args(["--clickhouse-url", url, "--clickhouse-database", db])
        .arg("--spool-dir")
        .arg(spool);
    c
}

/// True (after saying so on stderr) when `CLICKHOUSE_URL` is set: the test must
/// stop and restart its own server and is skipped.
pub fn skip_if_external_clickhouse() -> bool {
    let external = std::env::var("CLICKHOUSE_URL").is_ok_and(|u| !u.is_empty());
    if external {
        eprintln!("skipped: CLICKHOUSE_URL is set and this test must stop and restart the server");
    }
    external
}

/// The number of spooled batches (`*.json` files) in the spool directory `dir`.
pub fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
}

/// Applies the schema to `db` on `front` and returns the report.
pub fn apply_schema(front: &Front, db: &str) -> String {
    let (code, out, err) =
        run(collector()
            .arg("schema")
            .args(["--clickhouse-url", &front.url, "--database", db]));
    assert_eq!(code, 0, "schema failed:\n{out}\n{err}");
    out
}

/// Writes a capture made of `copies` copies of `src` (a nanosecond pcap on
/// Ethernet/IPv4), copy k shifted by k × (capture length + 1 s) and with the
/// client addresses (the side whose port is not `server_port`) moved to
/// 10.(second octet + k).x.y, so every copy's connections, and so span ids,
/// are new. Returns the number of packets written.
pub fn multiply_capture(src: &Path, dst: &Path, copies: u8, server_port: u16) -> usize {
    let d = std::fs::read(src).unwrap();
    assert_eq!(
        &d[..4],
        &[0x4d, 0x3c, 0xb2, 0xa1],
        "nanosecond little-endian pcap expected"
    );
    let mut recs: Vec<(u64, Vec<u8>, u32)> = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let u = |i: usize| u32::from_le_bytes(d[off + i..off + i + 4].try_into().unwrap());
        let ts = u64::from(u(0)) * 1_000_000_000 + u64::from(u(4));
        let cap = u(8) as usize;
        let orig = u(12);
        recs.push((ts, d[off + 16..off + 16 + cap].to_vec(), orig));
        off += 16 + cap;
    }
    let first = recs.first().unwrap().0;
    let last = recs.last().unwrap().0;
    let shift = last - first + 1_000_000_000;
    let mut out = d[..24].to_vec();
    let mut n = 0;
    for k in 0..copies {
        for (ts, p, orig) in &recs {
            let mut p = p.clone();
            if p.len() > 34 && p[12..14] == [0x08, 0x00] {
                let ihl = usize::from(p[14] & 15) * 4;
                if p.len() >= 14 + ihl + 4 && p[23] == 6 {
                    let sp = u16::from_be_bytes([p[14 + ihl], p[15 + ihl]]);
                    let dp = u16::from_be_bytes([p[16 + ihl], p[17 + ihl]]);
                    if sp != server_port {
                        p[27] = p[27].wrapping_add(k); // src IP, second octet
                    }
                    if dp != server_port {
                        p[31] = p[31].wrapping_add(k); // dst IP, second octet
                    }
                }
            }
            let t = ts + u64::from(k) * shift;
            out.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&orig.to_le_bytes());
            out.extend_from_slice(&p);
            n += 1;
        }
    }
    std::fs::write(dst, out).unwrap();
    n
}

/// A capture with no packets (a run that only replays the spool).
pub fn empty_capture(dst: &Path) {
    let d = std::fs::read(fixture("cutover.pcap")).unwrap();
    std::fs::write(dst, &d[..24]).unwrap();
}

/// The `N spans queued` figure of the collector's export report line.
pub fn queued_spans(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("export clickhouse:") && l.contains("spans queued"))
        .unwrap_or_else(|| panic!("no export report in:\n{stderr}"));
    let after = line.split("export clickhouse: ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}
