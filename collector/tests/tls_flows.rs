//! A capture with `-i any` next to a TLS-terminating hop: the TLS connections
//! are recognised and counted by server name and ALPN, never parsed as HTTP
//! (no parse errors, no resync bytes), and the plaintext requests beside them
//! give their spans.
//!
//! `tests/fixtures/tls-and-plaintext-any.pcap` (LINUX_SLL2, 68 packets): curl
//! 7.88 over loopback to a Python `http.server` behind `ssl` (TLS 1.3, twice to
//! 127.0.0.1 without SNI, once as `mcp.shop.svc.cluster.local` with ALPN
//! http/1.1 only) and twice in plaintext to the same handler with a
//! `tools/list` body, captured with `tcpdump -i any`.

mod support;

use std::process::Command;

#[test]
fn tls_connections_are_counted_not_parsed() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcptap-collector"))
        .arg("--pcap")
        .arg(support::fixture("tls-and-plaintext-any.pcap"))
        .args(["--output", "otlp-json"])
        .output()
        .expect("run collector");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(
            "tls (not decrypted, not parsed as http): connections 3  bytes 7237  hellos unread 0  \
             servers: (no sni) [h2,http/1.1] 2, mcp.shop.svc.cluster.local [http/1.1] 1"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("http: requests 2  responses 2  parse-errors 0  resync-skipped 0 bytes"),
        "{summary}"
    );
    let spans = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        spans.matches("\"name\":\"tools/list\"").count(),
        2,
        "{spans}"
    );
}
