//! The collector fed through a FIFO, so its `/metrics` can be scraped at the end
//! of input while it still runs, and its peak RSS (`VmHWM`) read at that moment.

use super::pcap::Pcap;
use super::{BIN, free_port, http_get, metric, vm_hwm_kib};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a collector run fed through a FIFO gave.
pub struct FifoRun {
    /// `/metrics` scraped at the end of input (before the collector's final flush).
    pub metrics: String,
    /// Peak RSS at that moment, in KiB.
    pub hwm_kib: u64,
    /// Exit code.
    pub code: i32,
    /// Standard error (logs and the end-of-run summary).
    pub stderr: String,
}

/// Runs the collector on `pcap` written into a FIFO, with `--admin-addr`:
/// writes the capture, waits a little over a second, writes `pad` ARP frames (so
/// the capture thread publishes its counters, which it does every 1024 packets
/// at most once a second), scrapes `/metrics` until `mcptap_packets_total` covers
/// every frame, reads the collector's `VmHWM`, then closes the FIFO and waits.
pub fn run_fifo(dir: &Path, pcap: &Pcap, args: &[&str], envs: &[(&str, &str)]) -> FifoRun {
    let fifo = dir.join("in.pcap");
    let _ = std::fs::remove_file(&fifo);
    let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(st.success());
    let port = free_port();
    let mut cmd = Command::new(BIN);
    cmd.arg("--pcap")
        .arg(&fifo)
        .args(["--admin-addr", &format!("127.0.0.1:{port}")])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child: Child = cmd.spawn().expect("spawn collector");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let mut r = stderr;
        let _ = r.read_to_string(&mut s);
        s
    });
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open fifo");
    w.write_all(&pcap.bytes).expect("write capture");
    w.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(1200));
    let mut pad = Vec::new();
    let last_ts = pcap.last_ts;
    let arp = {
        let mut f = vec![0xffu8; 6];
        f.extend_from_slice(&[2; 6]);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0u8; 28]);
        f
    };
    let n_pad = 2048u64;
    for _ in 0..n_pad {
        pad.extend_from_slice(&((last_ts / 1_000_000_000) as u32).to_le_bytes());
        pad.extend_from_slice(&((last_ts % 1_000_000_000) as u32).to_le_bytes());
        pad.extend_from_slice(&(arp.len() as u32).to_le_bytes());
        pad.extend_from_slice(&(arp.len() as u32).to_le_bytes());
        pad.extend_from_slice(&arp);
    }
    w.write_all(&pad).expect("write padding");
    w.flush().expect("flush");
    let want = (pcap.frames + 1) as f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Some(m) = http_get(port, "/metrics")
            && metric(&m, "mcptap_packets_total") >= want
        {
            metrics = m;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let hwm_kib = vm_hwm_kib(pid).unwrap_or(0);
    drop(w);
    let status = child.wait().expect("wait collector");
    let stderr = err_thread.join().expect("stderr thread");
    assert!(
        !metrics.is_empty(),
        "no /metrics covering {want} packets within 60 s; stderr: {stderr}"
    );
    FifoRun {
        metrics,
        hwm_kib,
        code: status.code().unwrap_or(-1),
        stderr,
    }
}
