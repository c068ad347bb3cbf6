//! The admin port under a slow-connection flood (issue 16: "no header-read
//! timeout or connection cap"): 20,000 connections to `--admin-addr` whose
//! request head never ends, held open by this test. With the default limits
//! the collector must
//! - keep its peak RSS under the sidecar's manifest memory limit, with the
//!   admin port's share at most [`ADMIN_BUDGET_MIB`];
//! - answer `/healthz` while the flood is held;
//! - close every one of those connections itself (cap and header-read timeout).
//!
//! Today's main fails the first and last points (no cap, no timeout: the
//! collector holds all 20,000, about 190 MB). `MCPTAP_TEST_COLLECTOR_BIN`
//! runs the test against another build of the collector, to check that.
//!
//! The slow connections are held by helper processes (this test binary run
//! again as [`flood_client`]), each within the open-file limit, which the test
//! raises to its hard limit with `prlimit` first (the collector inherits it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Slow connections opened.
const SLOW: usize = 20_000;

/// What the admin port may add to the collector's peak RSS under the flood:
/// the sidecar's limit must also hold the capture's own flood peak (191 MiB
/// with 105k tracked connections, SECURITY.md), so the admin port gets 32 MiB.
const ADMIN_BUDGET_MIB: u64 = 32;

/// The default `--admin-header-read-timeout`, plus slack for a busy machine.
const CLOSE_WITHIN: Duration = Duration::from_secs(5 + 5);

/// The collector under test: `MCPTAP_TEST_COLLECTOR_BIN`, else this build's.
fn collector_bin() -> PathBuf {
    std::env::var_os("MCPTAP_TEST_COLLECTOR_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

/// `memory:` under `limits:` in a manifest's text, in MiB (`256Mi`, `1Gi`).
fn memory_limit_mib(text: &str, what: &str) -> u64 {
    let after = text
        .split_once("limits:")
        .unwrap_or_else(|| panic!("no limits: in {what}"))
        .1;
    let v = after
        .split_once("memory:")
        .unwrap_or_else(|| panic!("no memory limit in {what}"))
        .1
        .trim_start();
    let v: String = v
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    match (v.strip_suffix("Mi"), v.strip_suffix("Gi")) {
        (Some(m), _) => m.parse().expect("MiB"),
        (_, Some(g)) => g.parse::<u64>().expect("GiB") * 1024,
        _ => panic!("memory limit {v:?} in {what}: expected Mi or Gi"),
    }
}

/// The sidecar's memory limit in MiB: the smaller of the kustomize component's
/// and the Helm chart's (`collector.resources`).
fn sidecar_limit_mib() -> u64 {
    let root = repo_root();
    let kustomize = std::fs::read_to_string(
        root.join("deploy/kubernetes/components/sidecar/sidecar-patch.yaml"),
    )
    .expect("sidecar-patch.yaml");
    let values =
        std::fs::read_to_string(root.join("deploy/helm/mcptap/values.yaml")).expect("values.yaml");
    let collector = values
        .split_once("\ncollector:")
        .expect("collector: in values.yaml")
        .1;
    memory_limit_mib(&kustomize, "sidecar-patch.yaml")
        .min(memory_limit_mib(collector, "values.yaml collector"))
}

/// `VmRSS` of a live process, in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Raises this process's soft open-file limit to its hard limit (children
/// inherit it) and returns it.
fn raise_nofile() -> usize {
    let pid = std::process::id().to_string();
    let out = Command::new("prlimit")
        .args([
            "--pid",
            &pid,
            "--nofile",
            "--output",
            "HARD",
            "--noheadings",
        ])
        .output()
        .expect("prlimit (util-linux)");
    let hard = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let n: usize = if hard == "unlimited" {
        1 << 20
    } else {
        hard.parse().expect("hard limit")
    };
    let st = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={n}:{n}")])
        .status()
        .expect("prlimit");
    assert!(st.success(), "prlimit --nofile={n}:{n}");
    n
}

/// True while the server has not closed `s` (a read would block).
fn still_open(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut b = [0u8; 512];
    loop {
        match s.read(&mut b) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Opens `n` connections to `addr` from 4 threads, each sending a head that
/// never ends; returns those that connected before `deadline`.
fn slow_flood(addr: SocketAddr, n: usize, deadline: Instant) -> Vec<TcpStream> {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let k = n / 4 + usize::from(t < n % 4);
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(k);
                for _ in 0..k {
                    if Instant::now() > deadline {
                        break;
                    }
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                    else {
                        continue;
                    };
                    // The server may already have closed it (cap): that is fine.
                    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                    out.push(s);
                }
                out
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("flood thread"))
        .collect()
}

/// The helper processes holding the slow connections (this test binary
/// running [`flood_client`]).
struct Clients(Vec<(ChildGuard, std::io::BufReader<std::process::ChildStdout>)>);

impl Clients {
    /// Starts helpers that together open `n` slow connections to `addr`, at
    /// most `per_process` each, and waits until they all connected; returns
    /// them with the number of connections made.
    fn start(addr: SocketAddr, n: usize, per_process: usize) -> (Clients, usize) {
        let exe = std::env::current_exe().expect("test binary");
        let mut clients = Vec::new();
        let mut left = n;
        while left > 0 {
            let k = left.min(per_process);
            left -= k;
            let mut c = Command::new(&exe)
                .args(["flood_client", "--exact", "--ignored", "--nocapture", "-q"])
                .env("MCPTAP_FLOOD_CLIENT", format!("{addr} {k}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("flood client");
            let out = std::io::BufReader::new(c.stdout.take().expect("stdout"));
            clients.push((ChildGuard(c), out));
        }
        let mut c = Clients(clients);
        let connected = c.ask("");
        (c, connected)
    }

    /// Sends `line` to every helper and sums the numbers they answer
    /// (`connected N` first, then `open N` for each `open?`).
    fn ask(&mut self, line: &str) -> usize {
        use std::io::BufRead;
        let mut sum = 0;
        for (child, out) in &mut self.0 {
            if !line.is_empty() {
                let stdin = child.0.stdin.as_mut().expect("stdin");
                writeln!(stdin, "{line}").expect("to flood client");
                stdin.flush().expect("flush");
            }
            let mut answer = String::new();
            loop {
                answer.clear();
                assert!(
                    out.read_line(&mut answer).expect("from flood client") > 0,
                    "flood client died"
                );
                if let Some(n) = answer.trim().strip_prefix("FLOOD ") {
                    sum += n.parse::<usize>().expect("count");
                    break;
                }
            }
        }
        sum
    }
}

/// Not a test of its own: the helper process of
/// [`twenty_thousand_slow_connections_stay_within_the_sidecar_limit`]. With
/// `MCPTAP_FLOOD_CLIENT="ADDR N"` it opens N slow connections, prints
/// `FLOOD <connected>`, then answers each `open?` line on stdin with
/// `FLOOD <still open>` until stdin closes.
#[test]
#[ignore = "helper process, run by the flood test"]
fn flood_client() {
    use std::io::BufRead;
    let Ok(spec) = std::env::var("MCPTAP_FLOOD_CLIENT") else {
        return;
    };
    let (addr, n) = spec.split_once(' ').expect("ADDR N");
    let addr: SocketAddr = addr.parse().expect("addr");
    let n: usize = n.parse().expect("N");
    let mut slow = slow_flood(addr, n, Instant::now() + Duration::from_secs(90));
    println!("FLOOD {}", slow.len());
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
        slow.retain_mut(still_open);
        println!("FLOOD {}", slow.len());
    }
}

/// The collector reading an endless FIFO capture with `--admin-addr` on `port`.
fn start_collector(dir: &Path, port: u16) -> (ChildGuard, std::fs::File) {
    let fifo = dir.join("in.pcap");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let child = Command::new(collector_bin())
        .arg("--pcap")
        .arg(&fifo)
        .args(["--admin-addr", &format!("127.0.0.1:{port}")])
        .arg("--output")
        .arg(format!("otlp-json={}", dir.join("spans.jsonl").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn collector");
    let guard = ChildGuard(child);
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open fifo");
    w.write_all(&Pcap::new().bytes).expect("pcap header");
    w.flush().expect("flush");
    (guard, w)
}

#[test]
fn twenty_thousand_slow_connections_stay_within_the_sidecar_limit() {
    let t0 = Instant::now();
    let nofile = raise_nofile();
    let limit_mib = sidecar_limit_mib();
    let dir = TempDir::new("admin-flood");
    let port = free_port();
    let (mut child, fifo) = start_collector(dir.path(), port);
    let pid = child.0.id();
    assert!(
        wait_until(Duration::from_secs(30), || {
            http_get_with(port, "/readyz", &[]).is_some_and(|(c, _)| c == 200)
        }),
        "collector not ready"
    );
    let before_kib = vm_rss_kib(pid);

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let (mut clients, connected) = Clients::start(addr, SLOW, nofile.saturating_sub(64).max(1000));
    // All of them, but for the few that today's collector cannot accept at
    // its open-file limit (it inherits ours).
    assert!(
        connected >= SLOW * 95 / 100,
        "only {connected} of {SLOW} slow connections could connect"
    );
    std::thread::sleep(Duration::from_millis(500));
    let health = http_get_with(port, "/healthz", &[]);
    let hwm_kib = vm_hwm_kib(pid).expect("VmHWM");
    let grown_mib = hwm_kib.saturating_sub(before_kib) / 1024;
    eprintln!(
        "{connected} slow connections in {:?}: RSS {} KiB before, peak {} KiB (limit {limit_mib} MiB)",
        t0.elapsed(),
        before_kib,
        hwm_kib
    );
    assert_eq!(
        health,
        Some((200, "ok\n".to_string())),
        "/healthz while the flood is held"
    );
    assert!(
        hwm_kib / 1024 < limit_mib,
        "peak RSS {hwm_kib} KiB over the sidecar limit {limit_mib} MiB"
    );
    assert!(
        grown_mib <= ADMIN_BUDGET_MIB,
        "the flood grew the collector by {grown_mib} MiB (budget {ADMIN_BUDGET_MIB} MiB)"
    );

    // The collector closes every slow connection itself.
    let deadline = Instant::now() + CLOSE_WITHIN;
    let mut open = clients.ask("open?");
    while open > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        open = clients.ask("open?");
    }
    assert_eq!(
        open, 0,
        "slow connections still open {CLOSE_WITHIN:?} after the flood"
    );
    drop(clients);
    assert_eq!(
        http_get_with(port, "/healthz", &[]),
        Some((200, "ok\n".to_string()))
    );
    // ...and counts each close by reason.
    let m = http_get(port, "/metrics").expect("/metrics");
    let closed = |r: &str| {
        metric(
            &m,
            &format!("mcptap_admin_connections_closed_total{{reason=\"{r}\"}}"),
        )
    };
    let (cap, timeout) = (closed("max_connections"), closed("header_read_timeout"));
    eprintln!("closed by the cap: {cap}, by the header-read timeout: {timeout}");
    assert!(
        cap + timeout >= connected as f64,
        "{connected} slow connections, {cap} + {timeout} closes counted"
    );

    // End of input: the collector exits cleanly.
    drop(fifo);
    let exited = wait_until(Duration::from_secs(30), || {
        child.0.try_wait().ok().flatten().is_some()
    });
    assert!(exited, "collector did not exit at the end of input");
    let code = child.0.try_wait().ok().flatten().and_then(|s| s.code());
    assert_eq!(code, Some(0), "collector exit status");
    assert!(
        t0.elapsed() < Duration::from_secs(180),
        "{:?}",
        t0.elapsed()
    );
}
