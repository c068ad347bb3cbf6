//! Synthetic captures: Ethernet/IPv4/TCP frames built with etherparse, written
//! as a nanosecond pcap, and whole HTTP exchanges as frames.

use etherparse::PacketBuilder;
use std::net::{Ipv4Addr, SocketAddrV4};

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

/// `10.a.b.c:port`.
pub fn ep(a: u8, b: u8, c: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), port)
}
