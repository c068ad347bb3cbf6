//! Fuzz target: synthetic TCP segments into a `FlowTable` with small caps.
//!
//! The input is a sequence of records:
//! `[ends, flags, seq_hi, seq_lo, ack_lo, len_dt, payload...]` where `ends`
//! picks source and destination among four endpoints, `flags` the TCP flags
//! and whether to call `expire`, `seq`/`ack` are small offsets from a
//! per-endpoint base near `u32::MAX` (so wraparound is exercised), and
//! `len_dt` gives the payload length (low 5 bits, bytes taken from the input)
//! and a time step. After each step the caps must hold; `finish` must leave
//! the table empty; every flow's events must be Opened first, Closed last.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::FlowId;
use mcptap_wire::link::{TcpFlags, TcpPacket};
use mcptap_wire::stats::WireStats;
use mcptap_wire::tcp::{FlowTable, TcpConfig, TcpEvent, TcpSink};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Checks per-flow event order: `true` while open, `false` once closed.
#[derive(Default)]
struct Check(HashMap<FlowId, bool>);

impl TcpSink for Check {
    fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
        match ev {
            TcpEvent::Opened { flow, .. } => {
                assert!(self.0.insert(flow, true).is_none(), "flow opened twice");
            }
            TcpEvent::Data { flow, data, .. } => {
                assert_eq!(self.0.get(&flow), Some(&true));
                assert!(!data.is_empty());
            }
            TcpEvent::Gap { flow, len, .. } => {
                assert_eq!(self.0.get(&flow), Some(&true));
                assert!(len > 0);
            }
            TcpEvent::Closed { flow, .. } => {
                assert_eq!(self.0.insert(flow, false), Some(true));
            }
        }
    }
}

const BASE: [u32; 4] = [u32::MAX - 100, 0, 5000, u32::MAX - 10];

fuzz_target!(|data: &[u8]| {
    let cfg = TcpConfig {
        max_flows: 3,
        max_buffered_bytes_per_dir: 64,
        max_buffered_bytes_total: 100,
        idle_timeout_ns: 1000,
    };
    let eps = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40000),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 40001),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 8080),
    ];
    let mut table = FlowTable::new(cfg);
    let mut stats = WireStats::default();
    let mut sink = Check::default();
    let mut ts: u64 = 0;
    let mut rest = data;
    while let [ends, flags, seq_hi, seq_lo, ack_lo, len_dt, tail @ ..] = rest {
        let src = usize::from(ends & 3);
        let dst = usize::from((ends >> 2) & 3);
        let len = usize::from(len_dt & 31).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        ts += u64::from(len_dt >> 5) * 200;
        let pkt = TcpPacket {
            src: eps[src],
            dst: eps[dst],
            seq: BASE[src].wrapping_add(u32::from(u16::from_be_bytes([*seq_hi, *seq_lo]))),
            ack: BASE[dst].wrapping_add(u32::from(*ack_lo) * 4),
            flags: TcpFlags {
                syn: flags & 1 != 0,
                ack: flags & 2 != 0,
                fin: flags & 4 != 0,
                rst: flags & 8 != 0,
            },
            payload,
        };
        table.ingest(ts, &pkt, &mut stats, &mut sink);
        assert!(table.buffered_bytes() <= cfg.max_buffered_bytes_total);
        assert!(table.len() <= cfg.max_flows);
        if flags & 0x80 != 0 {
            table.expire(ts, &mut stats, &mut sink);
        }
    }
    table.finish(ts, &mut stats, &mut sink);
    assert!(table.is_empty());
    assert_eq!(table.buffered_bytes(), 0);
    assert!(sink.0.values().all(|open| !open));
    assert_eq!(stats.flows_opened, sink.0.len() as u64);
});
