//! TLS connections are recognised on their first bytes and never parsed as
//! HTTP (a mesh's mTLS leg on eth0 next to the plaintext leg on loopback).
//!
//! `tests/data/client_hello_openssl.bin` is the first flight of
//! `openssl s_client -servername mcp.shop.svc.cluster.local -alpn h2,http/1.1`
//! (OpenSSL 3.0.19, TLS 1.3); `client_hello_python_tls12.bin` that of Python
//! 3.11's `ssl` with `maximum_version = TLSv1_2`, ALPN `http/1.1` and server name
//! `mcp.example.internal`: both read from a socket on loopback.

use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::stats::WireStats;
use mcptap_wire::tls::ClientHello;
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent};
use proptest::prelude::*;

const OPENSSL: &[u8] = include_bytes!("data/client_hello_openssl.bin");
const PYTHON_TLS12: &[u8] = include_bytes!("data/client_hello_python_tls12.bin");

fn meta() -> ConnMeta {
    ConnMeta {
        flow: FlowId(3),
        client: "127.0.0.6:51234".parse().expect("addr"),
        server: "10.1.2.3:8000".parse().expect("addr"),
        client_isn: 9,
    }
}

/// Feeds the client's bytes in the pieces `cuts` makes (fractions per mille),
/// some server bytes, then closes.
fn run(client: &[u8], cuts: &[u16], server: &[u8]) -> (Vec<HttpEvent>, WireStats) {
    let mut conn = HttpConnection::new(meta(), true, HttpConfig::default());
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| client.len() * usize::from(*c) / 1000)
        .collect();
    at.push(client.len());
    at.sort_unstable();
    let mut start = 0;
    for (i, end) in at.into_iter().enumerate() {
        if end > start {
            conn.on_data(
                Dir::ClientToServer,
                10 + i as u64,
                &client[start..end],
                &mut stats,
                &mut out,
            );
            start = end;
        }
    }
    conn.on_data(Dir::ServerToClient, 100, server, &mut stats, &mut out);
    conn.on_close(200, &mut stats, &mut out);
    (out, stats)
}

fn hello_of(events: &[HttpEvent]) -> Vec<Option<ClientHello>> {
    events
        .iter()
        .filter_map(|e| match e {
            HttpEvent::Tls { hello, .. } => Some(hello.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn openssl_tls13_hello_gives_sni_and_alpn() {
    let (out, stats) = run(
        OPENSSL,
        &[],
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03",
    );
    let want = ClientHello {
        sni: Some("mcp.shop.svc.cluster.local".into()),
        alpn: vec!["h2".into(), "http/1.1".into()],
        version: 0x0304,
    };
    assert_eq!(hello_of(&out), vec![Some(want)]);
    assert_eq!(out.len(), 2, "the TLS record, then Closed: {out:?}");
    assert!(matches!(
        out.last(),
        Some(HttpEvent::Closed { ts: 200, .. })
    ));
    assert_eq!(stats.tls_connections, 1);
    assert_eq!(stats.tls_bytes, OPENSSL.len() as u64 + 11);
    assert_eq!((stats.http_requests, stats.http_parse_errors), (0, 0));
    assert_eq!(stats.http_resync_skipped_bytes, 0);
}

#[test]
fn python_tls12_hello() {
    let (out, _) = run(PYTHON_TLS12, &[500], b"");
    let want = ClientHello {
        sni: Some("mcp.example.internal".into()),
        alpn: vec!["http/1.1".into()],
        version: 0x0303,
    };
    assert_eq!(hello_of(&out), vec![Some(want)]);
    assert!(
        matches!(out.first(), Some(HttpEvent::Tls { ts: 11, .. })),
        "reported when complete"
    );
}

#[test]
fn closed_before_the_hello_is_complete() {
    let (out, stats) = run(&OPENSSL[..40], &[], b"");
    assert_eq!(hello_of(&out), vec![None]);
    assert_eq!(stats.tls_hellos_unread, 1);
}

#[test]
fn application_data_first_is_tls_too() {
    // Capture started mid-connection, on a record boundary.
    let mut conn = HttpConnection::new(meta(), false, HttpConfig::default());
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    conn.on_data(
        Dir::ClientToServer,
        1,
        &[23, 3, 3, 0, 4, 1, 2, 3, 4],
        &mut stats,
        &mut out,
    );
    conn.on_data(
        Dir::ClientToServer,
        2,
        b"POST /mcp HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut stats,
        &mut out,
    );
    conn.on_close(3, &mut stats, &mut out);
    assert_eq!(hello_of(&out), vec![None]);
    assert_eq!(stats.http_requests, 0, "never parsed as HTTP");
}

proptest! {
    #[test]
    fn hello_read_the_same_however_it_is_cut(cuts in proptest::collection::vec(0u16..1000, 0..8)) {
        let (whole, _) = run(OPENSSL, &[], b"");
        let (cut, _) = run(OPENSSL, &cuts, b"");
        prop_assert_eq!(hello_of(&whole), hello_of(&cut));
    }

    #[test]
    fn tls_connections_never_give_http_events(
        first in 20u8..=23,
        rest in proptest::collection::vec(any::<u8>(), 0..3000),
        server in proptest::collection::vec(any::<u8>(), 0..500),
        cuts in proptest::collection::vec(0u16..1000, 0..6),
    ) {
        let mut client = vec![first, 3];
        client.extend_from_slice(&rest);
        let (out, stats) = run(&client, &cuts, &server);
        prop_assert_eq!(hello_of(&out).len(), 1);
        let only_tls = out
            .iter()
            .all(|e| matches!(e, HttpEvent::Tls { .. } | HttpEvent::Closed { .. }));
        prop_assert!(only_tls);
        prop_assert_eq!(stats.tls_bytes, (client.len() + server.len()) as u64);
    }
}
