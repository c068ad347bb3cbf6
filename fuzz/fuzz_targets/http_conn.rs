//! Fuzz target: both directions of an `HttpConnection`.
//!
//! Input: one configuration byte (bit 0: handshake seen; bit 1: small caps),
//! then records `[op][len][len bytes]`: `op & 3` is 0/1 data client→server,
//! 2 data server→client, 3 a gap of `len + 1` bytes in direction `op & 4`.
//! A record cut short by the end of the input uses what is left. The
//! connection is closed at the end. Checks: no panic, buffered bytes stay
//! under the caps, `Closed` is the last event.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::conn::{HttpConfig, HttpConnection};
use mcptap_wire::stats::WireStats;
use mcptap_wire::{ConnMeta, Dir, FlowId, HttpEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg_byte, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = if cfg_byte & 2 != 0 {
        HttpConfig {
            max_body_bytes: 64,
            max_head_bytes: 256,
        }
    } else {
        HttpConfig {
            max_body_bytes: 4096,
            max_head_bytes: 8192,
        }
    };
    let meta = ConnMeta {
        flow: FlowId(1),
        client: "10.0.0.1:40000".parse().expect("static addr"),
        server: "10.0.0.2:8000".parse().expect("static addr"),
        client_isn: 0,
    };
    let mut conn = HttpConnection::new(meta, cfg_byte & 1 != 0, cfg);
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    let bound = 2
        * (cfg.max_head_bytes.max(mcptap_wire::http::RESYNC_LINE_MAX) + 1 + 4 * cfg.max_body_bytes);
    let mut ts = 0u64;
    while let Some((&op, r)) = rest.split_first() {
        let Some((&len, r)) = r.split_first() else {
            break;
        };
        let n = usize::from(len).min(r.len());
        let (bytes, r) = r.split_at(n);
        rest = r;
        ts += 1;
        match op & 3 {
            0 | 1 => conn.on_data(Dir::ClientToServer, ts, bytes, &mut stats, &mut out),
            2 => conn.on_data(Dir::ServerToClient, ts, bytes, &mut stats, &mut out),
            _ => {
                let dir = if op & 4 != 0 {
                    Dir::ServerToClient
                } else {
                    Dir::ClientToServer
                };
                conn.on_gap(dir, ts, u64::from(len) + 1, &mut stats, &mut out);
            }
        }
        assert!(conn.buffered_bytes() <= bound);
        out.clear();
    }
    conn.on_close(ts + 1, &mut stats, &mut out);
    assert!(matches!(out.last(), Some(HttpEvent::Closed { .. })));
});
