//! Helpers of the flood and secrets tests: synthetic captures (Ethernet/IPv4/TCP
//! frames built with etherparse, written as a nanosecond pcap), whole HTTP
//! exchanges as frames, the collector fed through a FIFO so its `/metrics` can be
//! scraped at the end of input while it still runs, its peak RSS (`VmHWM`), and
//! the spans of its OTLP/JSON output.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use etherparse::PacketBuilder;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The collector binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcptap-collector");

/// A fresh temporary directory, removed on drop.
pub struct Tmp(pub PathBuf);

impl Tmp {
    /// `$TMPDIR/mcptap-<tag>-<pid>`.
    pub fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("mcptap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp dir");
        Tmp(d)
    }
    /// A path inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A nanosecond, little-endian pcap (LINKTYPE_ETHERNET) built in memory.
pub struct Pcap {
    /// The file bytes.
    pub bytes: Vec<u8>,
    /// Frames written.
    pub frames: u64,
    /// Timestamp of the last frame, ns.
    pub last_ts: u64,
}

impl Default for Pcap {
    fn default() -> Self {
        Self::new()
    }
}

impl Pcap {
    /// An empty capture (file header only).
    pub fn new() -> Pcap {
        let mut v = Vec::new();
        v.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v.extend_from_slice(&262_144u32.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        Pcap {
            bytes: v,
            frames: 0,
            last_ts: 0,
        }
    }
    /// Appends one frame stamped `ts_ns` (ns since the epoch).
    pub fn push(&mut self, ts_ns: u64, frame: &[u8]) {
        self.bytes
            .extend_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(frame);
        self.frames += 1;
        self.last_ts = self.last_ts.max(ts_ns);
    }
}

/// TCP flags of a frame.
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// SYN only.
pub const SYN: Flags = Flags {
    syn: true,
    ack: false,
    fin: false,
    rst: false,
};
/// SYN+ACK.
pub const SYNACK: Flags = Flags {
    syn: true,
    ack: true,
    fin: false,
    rst: false,
};
/// ACK (data).
pub const ACK: Flags = Flags {
    syn: false,
    ack: true,
    fin: false,
    rst: false,
};
/// FIN+ACK.
pub const FIN: Flags = Flags {
    syn: false,
    ack: true,
    fin: true,
    rst: false,
};

/// One Ethernet/IPv4/TCP frame from `src` to `dst`.
pub fn frame(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    f: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src.ip().octets(), dst.ip().octets(), 64)
        .tcp(src.port(), dst.port(), seq, 65535);
    if f.ack {
        b = b.ack(ack);
    }
    if f.syn {
        b = b.syn();
    }
    if f.fin {
        b = b.fin();
    }
    if f.rst {
        b = b.rst();
    }
    let mut out = Vec::with_capacity(54 + payload.len());
    b.write(&mut out, payload).expect("build frame");
    out
}

/// One TCP connection being written into a capture: handshake on creation, then
/// data in either direction (cut into 1400-byte segments), then FIN.
pub struct Conn {
    pub client: SocketAddrV4,
    pub server: SocketAddrV4,
    cseq: u32,
    sseq: u32,
}

impl Conn {
    /// Writes the three-way handshake at `ts` and returns the connection.
    pub fn open(p: &mut Pcap, ts: u64, client: SocketAddrV4, server: SocketAddrV4) -> Conn {
        let (cisn, sisn) = (1000u32, 500_000u32);
        p.push(ts, &frame(client, server, cisn, 0, SYN, b""));
        p.push(ts + 10, &frame(server, client, sisn, cisn + 1, SYNACK, b""));
        p.push(
            ts + 20,
            &frame(client, server, cisn + 1, sisn + 1, ACK, b""),
        );
        Conn {
            client,
            server,
            cseq: cisn + 1,
            sseq: sisn + 1,
        }
    }
    /// Client → server bytes.
    pub fn send(&mut self, p: &mut Pcap, ts: u64, data: &[u8]) {
        for c in data.chunks(1400) {
            p.push(
                ts,
                &frame(self.client, self.server, self.cseq, self.sseq, ACK, c),
            );
            self.cseq = self.cseq.wrapping_add(c.len() as u32);
        }
    }
    /// Server → client bytes.
    pub fn reply(&mut self, p: &mut Pcap, ts: u64, data: &[u8]) {
        for c in data.chunks(1400) {
            p.push(
                ts,
                &frame(self.server, self.client, self.sseq, self.cseq, ACK, c),
            );
            self.sseq = self.sseq.wrapping_add(c.len() as u32);
        }
    }
    /// FIN both ways.
    pub fn close(self, p: &mut Pcap, ts: u64) {
        p.push(
            ts,
            &frame(self.client, self.server, self.cseq, self.sseq, FIN, b""),
        );
        p.push(
            ts + 1,
            &frame(self.server, self.client, self.sseq, self.cseq + 1, FIN, b""),
        );
    }
}

/// A POST /mcp request with `headers` (each `Name: value`) and a JSON body.
pub fn post(headers: &[&str], body: &str) -> Vec<u8> {
    let mut h = String::from(
        "POST /mcp HTTP/1.1\r\nHost: mcp.test:8000\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n",
    );
    for x in headers {
        h.push_str(x);
        h.push_str("\r\n");
    }
    h.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    h.into_bytes()
}

/// A 200 JSON response with `headers`.
pub fn json_response(headers: &[&str], body: &str) -> Vec<u8> {
    let mut h = String::from("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n");
    for x in headers {
        h.push_str(x);
        h.push_str("\r\n");
    }
    h.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    h.into_bytes()
}

/// A modern (2026-07-28) `tools/call` request body for `tool` with `args` (JSON object text).
pub fn tools_call(id: u64, tool: &str, args: &str, meta_extra: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"flood-client","version":"1.0"}}{meta_extra}}}}}}}"#
    )
}

/// The routing headers of a modern `tools/call`.
pub fn modern_headers(tool: &str) -> Vec<String> {
    vec![
        "MCP-Protocol-Version: 2026-07-28".into(),
        "Mcp-Method: tools/call".into(),
        format!("Mcp-Name: {tool}"),
    ]
}

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
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

/// `10.a.b.c:port`.
pub fn ep(a: u8, b: u8, c: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), port)
}
