//! Bad input gives a clear error or counted drops, never a crash:
//! unreadable and non-capture files, captures cut in the middle, and garbage
//! inside well-formed TCP.

mod support;

use etherparse::PacketBuilder;
use proptest::prelude::*;
use std::path::Path;
use std::process::Command;

use support::BIN;

/// A little-endian, nanosecond pcap (LINKTYPE_ETHERNET) holding `frames` stamped 1 ms apart.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&262_144u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        v.extend_from_slice(&(i as u32 * 1_000_000).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

/// One Ethernet/IPv4/TCP frame.
fn tcp(from_client: bool, seq: u32, ack: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], 40000, 8000)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 8000, 40000)
    };
    let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 65535)
        .ack(ack);
    if syn {
        b = b.syn();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("build frame");
    out
}

fn run(args: &[&str], file: &Path) -> (i32, String, String) {
    let o = Command::new(BIN)
        .args(args)
        .arg("--pcap")
        .arg(file)
        .output()
        .expect("run collector");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn missing_file_is_named() {
    let dir = support::TempDir::new("malformed");
    let p = dir.join("does-not-exist.pcap");
    let (code, _, err) = run(&[], &p);
    assert_eq!(code, 1);
    assert!(err.contains("does-not-exist.pcap"), "{err}");
}

#[test]
fn non_capture_is_rejected_with_file_and_offset() {
    let dir = support::TempDir::new("malformed");
    let p = dir.join("random.bin");
    std::fs::write(
        &p,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n this is no pcap at all ........",
    )
    .expect("write");
    let (code, out, err) = run(&["--output", "otlp-json"], &p);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("random.bin") && err.contains("byte offset 0"),
        "{err}"
    );
    assert!(out.is_empty());
}

#[test]
fn truncated_capture_yields_everything_before_the_cut() {
    // A request/response exchange, then a record whose body is cut off.
    let req_body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nMcp-Method: tools/list\r\nMCP-Protocol-Version: 2026-07-28\r\nContent-Length: {}\r\n\r\n{req_body}",
        req_body.len()
    );
    let req = req.as_bytes();
    let body =
        br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"resultType":"complete","ttlMs":0}}"#;
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut resp = resp.into_bytes();
    resp.extend_from_slice(body);
    let frames = vec![
        tcp(true, 100, 0, true, b""),
        tcp(false, 500, 101, true, b""),
        tcp(true, 101, 501, false, req),
        tcp(false, 501, 101 + req.len() as u32, false, &resp),
        tcp(
            true,
            101 + req.len() as u32,
            501 + resp.len() as u32,
            false,
            b"POST /mcp HTTP/1.1\r\n",
        ),
    ];
    let mut bytes = pcap(&frames);
    let full = bytes.len();
    bytes.truncate(full - 10); // cut inside the last record
    let last_record_start = full - (16 + frames[4].len());
    let dir = support::TempDir::new("malformed");
    let p = dir.join("cut.pcap");
    std::fs::write(&p, &bytes).expect("write");
    let (code, out, err) = run(&["--output", "otlp-json"], &p);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("byte offset {last_record_start}")),
        "{err}"
    );
    assert!(err.contains("after 4 packets"), "{err}");
    assert!(
        out.contains("\"tools/list\""),
        "the exchange before the cut became a span: {out}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random payloads inside a well-formed connection, and random frames, never crash the
    /// collector; the run ends normally and says what it dropped.
    #[test]
    fn garbage_is_counted_not_fatal(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..12),
        junk in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6),
    ) {
        let mut frames = vec![tcp(true, 1000, 0, true, b""), tcp(false, 9000, 1001, true, b"")];
        let (mut cs, mut ss) = (1001u32, 9001u32);
        for (i, p) in payloads.iter().enumerate() {
            if i % 2 == 0 {
                frames.push(tcp(true, cs, ss, false, p));
                cs = cs.wrapping_add(p.len() as u32);
            } else {
                frames.push(tcp(false, ss, cs, false, p));
                ss = ss.wrapping_add(p.len() as u32);
            }
        }
        frames.extend(junk.iter().cloned());
        let dir = support::TempDir::new("malformed");
        let p = dir.join(&format!("garbage-{}.pcap", payloads.len()));
        std::fs::write(&p, pcap(&frames)).expect("write");
        let (code, _out, err) = run(&["--output", "otlp-json"], &p);
        prop_assert_eq!(code, 0, "{}", err);
        prop_assert!(err.contains("mcptap summary"), "{}", err);
        prop_assert!(!err.contains("panicked"), "{}", err);
    }
}
