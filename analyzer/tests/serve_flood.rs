//! `serve` under a connection flood (issue 16): 20,000 half-open connections (a request head
//! that never ends) on loopback. The analyzer's memory stays under its manifest limit
//! (256Mi, `deploy/kubernetes`), `/healthz` keeps answering on a new connection, and the
//! slow connections are closed (the connection cap evicts the oldest; the header-read timeout
//! closes the rest). Also: one slow head is closed after `--header-read-timeout`, an idle
//! keep-alive connection after the same time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The manifest memory limit of the analyzer (`deploy/kubernetes/analyzer.yaml`).
const MEMORY_LIMIT_BYTES: u64 = 256 * 1024 * 1024;
const SLOW_CONNECTIONS: usize = 20_000;

struct Serve {
    child: Child,
    addr: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on a free loopback port with an unreachable ClickHouse (the HTTP server does not
/// need it) and `extra` flags. `MCPTAP_ANALYZER_BIN` runs another build (such as an older
/// one, to show the test fails there).
fn start(extra: &[&str]) -> Serve {
    let bin = std::env::var("MCPTAP_ANALYZER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mcptap-analyzer").to_string());
    let mut child = Command::new(bin)
        .args(["serve", "--clickhouse-url", "http://127.0.0.1:9"])
        .args(["--listen", "127.0.0.1:0", "--interval", "1h"])
        .args(extra)
        .env_remove("MCPTAP_ANALYZER_TOKEN")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("mcptap-analyzer: serving on http://") {
                let _ = tx.send(rest.trim_end_matches('/').to_string());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    Serve { child, addr }
}

/// `(VmRSS, VmHWM)` of `pid` in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{k} missing"))
    };
    (kb("VmRSS:") * 1024, kb("VmHWM:") * 1024)
}

/// `GET /healthz` on a new connection: the status line, within `timeout`.
fn healthz(addr: &str, timeout: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_string()
}

/// Whether the server closed `s` (EOF or reset), without blocking.
fn closed(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 512];
    match (&mut &*s).read(&mut b) {
        Ok(0) => true,
        Ok(_) => closed(s),
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    }
}

/// Processes that hold the slow connections (each one's RLIMIT_NOFILE is 20,000 here and
/// cannot be raised without CAP_SYS_RESOURCE, so the flood is split).
const WORKERS: usize = 2;

/// Worker side (runs only under `MCPTAP_FLOOD_ADDR`): opens `MCPTAP_FLOOD_COUNT` half-open
/// connections, prints `opened N`; on a line from stdin prints `closed M` (how many the server
/// closed); exits at stdin EOF.
#[test]
fn flood_worker() {
    let (Ok(addr), Ok(count)) = (
        std::env::var("MCPTAP_FLOOD_ADDR"),
        std::env::var("MCPTAP_FLOOD_COUNT"),
    ) else {
        return;
    };
    let count: usize = count.parse().unwrap();
    let mut slow = Vec::with_capacity(count);
    for _ in 0..count {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .unwrap();
        slow.push(s);
    }
    println!("opened {}", slow.len());
    let mut lines = std::io::stdin().lock().lines();
    while let Some(Ok(_)) = lines.next() {
        println!("closed {}", slow.iter().filter(|s| closed(s)).count());
    }
}

struct Worker {
    child: Child,
    out: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Worker {
    fn spawn(addr: &str, count: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "flood_worker", "--nocapture", "--test-threads=1"])
            .env("MCPTAP_FLOOD_ADDR", addr)
            .env("MCPTAP_FLOOD_COUNT", count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, out }
    }

    /// The number after `word` on the next line that starts with it.
    fn expect(&mut self, word: &str) -> usize {
        for line in self.out.by_ref().map_while(Result::ok) {
            // libtest may print `test flood_worker ... ` before it on the same line.
            if let Some(at) = line.find(word) {
                let n = line[at + word.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                return n.parse().unwrap();
            }
        }
        panic!("worker ended before {word:?}");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn twenty_thousand_half_open_connections() {
    let srv = start(&[]);
    let pid = srv.child.id();
    assert!(healthz(&srv.addr, Duration::from_secs(5)).contains("200"));
    let t = Instant::now();
    let per = SLOW_CONNECTIONS / WORKERS;
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|_| Worker::spawn(&srv.addr, per))
        .collect();
    // The probe keeps getting through while the workers connect.
    let addr = srv.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let prober = std::thread::spawn(move || {
        let mut probes = Vec::new();
        let mut peak_rss = 0;
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            probes.push(healthz(&addr, Duration::from_secs(5)));
            peak_rss = peak_rss.max(memory(pid).0);
            std::thread::sleep(Duration::from_millis(250));
        }
        (probes, peak_rss)
    });
    let opened: usize = workers.iter_mut().map(|w| w.expect("opened ")).sum();
    let flood_s = t.elapsed().as_secs_f64();
    assert_eq!(opened, SLOW_CONNECTIONS);
    assert!(flood_s < 240.0, "flood too slow: {flood_s} s");
    // All 20k are open on the clients' side; the server holds at most --max-connections.
    let st = healthz(&srv.addr, Duration::from_secs(5));
    assert!(st.contains("200"), "{st:?}");
    let (rss, hwm) = memory(pid);
    std::thread::sleep(Duration::from_millis(500));
    let mut n_closed = 0;
    for w in &mut workers {
        writeln!(w.child.stdin.as_mut().unwrap(), "check").unwrap();
        n_closed += w.expect("closed ");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (probes, peak_rss) = prober.join().unwrap();
    drop(workers);
    eprintln!(
        "{SLOW_CONNECTIONS} half-open connections in {flood_s:.1} s: analyzer VmRSS {} KiB, \
         VmHWM {} KiB (sampled peak RSS {} KiB), {n_closed} closed by the server, {} probes \
         during the flood",
        rss / 1024,
        hwm / 1024,
        peak_rss / 1024,
        probes.len()
    );
    assert!(hwm < MEMORY_LIMIT_BYTES, "VmHWM {hwm} >= 256Mi");
    let ok = probes.iter().filter(|p| p.contains("200")).count();
    assert!(ok == probes.len() && ok >= 2, "probes: {probes:?}");
    assert!(
        n_closed >= SLOW_CONNECTIONS - 512 - 16,
        "only {n_closed} slow connections closed: the cap did not evict"
    );
}

#[test]
fn slow_head_and_idle_keep_alive_are_closed() {
    let srv = start(&["--header-read-timeout", "1s", "--idle-timeout", "30s"]);
    // A head that never ends: closed (408 or EOF) after about 1 s.
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "slow head closed after {took:?}"
    );
    // A keep-alive connection after a full request: answered, then closed when idle.
    let mut k = TcpStream::connect(&srv.addr).unwrap();
    k.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    k.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    let _ = k.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("ok\n"), "{text}");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "idle keep-alive kept {took:?}"
    );
    // Bad limit flags are refused.
    for bad in [
        ["--max-connections", "0"],
        ["--header-read-timeout", "0s"],
        ["--idle-timeout", "soon"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mcptap-analyzer"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
    }
}
