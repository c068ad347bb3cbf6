//! Scenario tests of the TCP reassembler (`mcptap_wire::tcp`).

mod common_tcp;

use common_tcp::{Ev, Rec, addr, seg};
use mcptap_wire::link::TcpPacket;
use mcptap_wire::stats::WireStats;
use mcptap_wire::tcp::{CloseReason, FlowTable, TcpConfig};
use mcptap_wire::{Dir, FlowId};
use std::net::SocketAddr;

const C2S: Dir = Dir::ClientToServer;
const S2C: Dir = Dir::ServerToClient;

struct T {
    table: FlowTable,
    stats: WireStats,
    rec: Rec,
}

impl T {
    fn new() -> T {
        T::with(TcpConfig::default())
    }
    fn with(cfg: TcpConfig) -> T {
        T {
            table: FlowTable::new(cfg),
            stats: WireStats::default(),
            rec: Rec::default(),
        }
    }
    fn feed(&mut self, ts: u64, p: &TcpPacket<'_>) {
        self.table.ingest(ts, p, &mut self.stats, &mut self.rec);
    }
    fn finish(&mut self, ts: u64) {
        self.table.finish(ts, &mut self.stats, &mut self.rec);
    }
    fn expire(&mut self, ts: u64) {
        self.table.expire(ts, &mut self.stats, &mut self.rec);
    }
}

fn c() -> SocketAddr {
    addr("10.0.0.1:40000")
}
fn s() -> SocketAddr {
    addr("10.0.0.2:8080")
}

/// SYN (client ISN `ci`), SYN+ACK (server ISN `si`), ACK.
fn handshake(t: &mut T, ci: u32, si: u32) {
    t.feed(1, &seg(c(), s(), "S", ci, 0, b""));
    t.feed(2, &seg(s(), c(), "SA", si, ci.wrapping_add(1), b""));
    t.feed(
        3,
        &seg(c(), s(), "A", ci.wrapping_add(1), si.wrapping_add(1), b""),
    );
}

fn data(flow: u64, dir: Dir, ts: u64, d: &[u8]) -> Ev {
    Ev::Data {
        flow: FlowId(flow),
        dir,
        ts,
        data: d.to_vec(),
    }
}

fn gap(flow: u64, dir: Dir, ts: u64, len: u64) -> Ev {
    Ev::Gap {
        flow: FlowId(flow),
        dir,
        ts,
        len,
    }
}

fn closed(flow: u64, ts: u64, reason: CloseReason) -> Ev {
    Ev::Closed {
        flow: FlowId(flow),
        ts,
        reason,
    }
}

#[test]
fn handshake_request_response_fin() {
    let mut t = T::new();
    handshake(&mut t, 1000, 5000);
    t.feed(
        4,
        &seg(c(), s(), "A", 1001, 5001, b"GET / HTTP/1.1\r\n\r\n"),
    );
    t.feed(5, &seg(s(), c(), "A", 5001, 1019, b"HTTP/1.1 200 OK\r\n"));
    t.feed(6, &seg(s(), c(), "AF", 5018, 1019, b"\r\n"));
    t.feed(7, &seg(c(), s(), "AF", 1019, 5021, b""));
    assert_eq!(
        t.rec.0,
        vec![
            Ev::Opened {
                flow: FlowId(0),
                client: c(),
                server: s(),
                client_isn: 1000,
                saw_syn: true,
                ts: 1
            },
            data(0, C2S, 4, b"GET / HTTP/1.1\r\n\r\n"),
            data(0, S2C, 5, b"HTTP/1.1 200 OK\r\n"),
            data(0, S2C, 6, b"\r\n"),
            closed(0, 7, CloseReason::Fin),
        ]
    );
    assert!(t.table.is_empty());
    // The last ACK after both FINs opens nothing.
    t.feed(8, &seg(s(), c(), "A", 5022, 1020, b""));
    assert!(t.table.is_empty());
    assert_eq!(t.stats.tcp_segments_without_flow, 1);
    assert_eq!(t.stats.flows_opened, 1);
    assert_eq!(t.stats.flows_closed, 1);
    assert_eq!(t.stats.tcp_bytes_delivered, 18 + 17 + 2);
    assert_eq!(t.stats.tcp_gaps, 0);
}

#[test]
fn syn_ack_only_gives_client_isn_and_roles() {
    let mut t = T::new();
    // SYN missed: the SYN+ACK sender is the server, even on a high port.
    let srv = addr("10.0.0.2:50000");
    let cli = addr("10.0.0.1:80");
    t.feed(1, &seg(srv, cli, "SA", 7, 101, b""));
    t.feed(2, &seg(cli, srv, "A", 101, 8, b"hello"));
    assert_eq!(t.rec.opens(), vec![(FlowId(0), cli, srv, 100, true)]);
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"hello");
}

#[test]
fn in_order_segments_are_delivered_one_by_one() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"ab"));
    t.feed(11, &seg(c(), s(), "A", 3, 1, b"cd"));
    t.feed(12, &seg(c(), s(), "A", 5, 1, b"e"));
    assert_eq!(
        t.rec.0[1..],
        [
            data(0, C2S, 10, b"ab"),
            data(0, C2S, 11, b"cd"),
            data(0, C2S, 12, b"e")
        ]
    );
}

#[test]
fn out_of_order_is_buffered_and_delivered_as_one_run() {
    let mut t = T::new();
    handshake(&mut t, 100, 0);
    t.feed(10, &seg(c(), s(), "A", 105, 1, b"fgh")); // ahead
    t.feed(11, &seg(c(), s(), "A", 108, 1, b"ij")); // ahead, adjacent
    assert_eq!(t.table.buffered_bytes(), 5);
    t.feed(12, &seg(c(), s(), "A", 101, 1, b"abcd")); // fills the hole
    assert_eq!(t.rec.0[1..], [data(0, C2S, 12, b"abcdfghij")]);
    assert_eq!(t.table.buffered_bytes(), 0);
    assert_eq!(t.stats.tcp_out_of_order_segments, 2);
    // A hole not yet filled keeps the in-order prefix flowing.
    t.feed(13, &seg(c(), s(), "A", 112, 1, b"lm"));
    t.feed(14, &seg(c(), s(), "A", 110, 1, b"k"));
    assert_eq!(t.rec.0[2..], [data(0, C2S, 14, b"k")]);
    t.feed(15, &seg(c(), s(), "A", 111, 1, b"X"));
    assert_eq!(t.rec.0[3..], [data(0, C2S, 15, b"Xlm")]);
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"abcdfghijkXlm");
}

#[test]
fn exact_retransmission_is_not_delivered_twice() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"abc"));
    t.feed(11, &seg(c(), s(), "A", 1, 1, b"abc"));
    t.feed(12, &seg(c(), s(), "A", 4, 1, b"de"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"abcde");
    assert_eq!(t.stats.tcp_retransmitted_segments, 1);
    // Retransmission of a buffered (out-of-order) segment.
    t.feed(13, &seg(c(), s(), "A", 10, 1, b"xyz"));
    t.feed(14, &seg(c(), s(), "A", 10, 1, b"xyz"));
    assert_eq!(t.stats.tcp_retransmitted_segments, 2);
    assert_eq!(t.table.buffered_bytes(), 3);
}

#[test]
fn partial_overlap_delivers_only_new_bytes_first_received_wins() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"abcdef"));
    // Overlaps 3 delivered bytes; the resent copy differs: delivered bytes win.
    t.feed(11, &seg(c(), s(), "A", 4, 1, b"XYZghi"));
    assert_eq!(t.rec.0[2..], [data(0, C2S, 11, b"ghi")]);
    // Buffered bytes win over later overlapping ones.
    t.feed(12, &seg(c(), s(), "A", 13, 1, b"mno")); // offsets 12..15
    t.feed(13, &seg(c(), s(), "A", 11, 1, b"KLMNOPQ")); // 10..17, overlaps buffered
    assert_eq!(t.table.buffered_bytes(), 7);
    t.feed(14, &seg(c(), s(), "A", 10, 1, b"j"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"abcdefghijKLmnoPQ");
    assert_eq!(t.table.buffered_bytes(), 0);
}

#[test]
fn wraparound_near_u32_max() {
    let mut t = T::new();
    let isn = u32::MAX - 3;
    handshake(&mut t, isn, u32::MAX);
    // Client stream starts at seq u32::MAX - 2 and crosses 0.
    let s0 = isn.wrapping_add(1);
    t.feed(10, &seg(c(), s(), "A", s0.wrapping_add(4), 0, b"efgh")); // seq 1..5
    t.feed(11, &seg(c(), s(), "A", s0, 0, b"abcd")); // MAX-2..1
    t.feed(12, &seg(c(), s(), "A", s0.wrapping_add(8), 0, b"ij"));
    // Server stream starts at 0 exactly (ISN u32::MAX).
    t.feed(13, &seg(s(), c(), "A", 0, s0.wrapping_add(10), b"OK"));
    t.feed(
        14,
        &seg(s(), c(), "A", u32::MAX, s0.wrapping_add(10), b"zOK"),
    ); // partial retransmission
    t.feed(15, &seg(s(), c(), "A", 2, s0.wrapping_add(10), b"!"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"abcdefghij");
    assert_eq!(t.rec.bytes(FlowId(0), S2C), b"OK!");
    assert_eq!(t.stats.tcp_gaps, 0);
}

#[test]
fn gap_declared_when_peer_acks_beyond_hole() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"aaaa"));
    // bytes 5..9 missed by the capture
    t.feed(11, &seg(c(), s(), "A", 9, 1, b"cccc"));
    assert_eq!(t.stats.tcp_gaps, 0);
    // Server ACK only up to the hole start: nothing yet.
    t.feed(12, &seg(s(), c(), "A", 1, 5, b""));
    assert_eq!(t.stats.tcp_gaps, 0);
    // Server acknowledges everything: the receiver got bytes we missed.
    t.feed(13, &seg(s(), c(), "A", 1, 13, b""));
    assert_eq!(
        t.rec.0[2..],
        [gap(0, C2S, 13, 4), data(0, C2S, 13, b"cccc")]
    );
    assert_eq!(t.stats.tcp_gaps, 1);
    assert_eq!(t.stats.tcp_gap_bytes, 4);
    assert_eq!(t.stats.tcp_buffer_overflow_bytes, 0);
    // A late copy of the skipped bytes is not delivered.
    t.feed(14, &seg(c(), s(), "A", 5, 1, b"bbbb"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"aaaacccc");
}

#[test]
fn ack_inside_a_hole_declares_a_partial_gap() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 11, 1, b"zz")); // offsets 10..12, hole 0..10
    t.feed(11, &seg(s(), c(), "A", 1, 5, b"")); // acks offsets < 4
    assert_eq!(t.rec.0[1..], [gap(0, C2S, 11, 4)]);
    t.feed(12, &seg(c(), s(), "A", 5, 1, b"456789")); // offsets 4..10
    assert_eq!(t.rec.0[2..], [data(0, C2S, 12, b"456789zz")]);
}

#[test]
fn gap_declared_when_direction_buffer_cap_exceeded() {
    let mut t = T::with(TcpConfig {
        max_buffered_bytes_per_dir: 10,
        ..TcpConfig::default()
    });
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"ab"));
    t.feed(11, &seg(c(), s(), "A", 6, 1, b"0123456")); // 7 buffered, hole of 3
    assert_eq!(t.table.buffered_bytes(), 7);
    t.feed(12, &seg(c(), s(), "A", 20, 1, b"QRST")); // 11 > 10: skip first hole
    assert_eq!(
        t.rec.0[2..],
        [gap(0, C2S, 12, 3), data(0, C2S, 12, b"0123456")]
    );
    assert_eq!(t.table.buffered_bytes(), 4);
    assert_eq!(t.stats.tcp_buffer_overflow_bytes, 3);
    t.feed(13, &seg(c(), s(), "A", 13, 1, b"defghij"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"ab0123456defghijQRST");
}

#[test]
fn gap_declared_when_table_total_cap_exceeded_largest_first() {
    let mut t = T::with(TcpConfig {
        max_buffered_bytes_total: 10,
        ..TcpConfig::default()
    });
    let c2 = addr("10.0.0.3:40001");
    handshake(&mut t, 0, 0);
    t.feed(4, &seg(c2, s(), "S", 0, 0, b""));
    t.feed(5, &seg(c(), s(), "A", 3, 1, b"123456")); // flow 0: 6 buffered
    t.feed(6, &seg(c2, s(), "A", 2, 1, b"abc")); // flow 1: 3 buffered
    assert_eq!(t.table.buffered_bytes(), 9);
    t.feed(7, &seg(c2, s(), "A", 6, 1, b"ef")); // 11 > 10: flow 0 is largest
    assert_eq!(
        t.rec.0[t.rec.0.len() - 2..],
        [gap(0, C2S, 7, 2), data(0, C2S, 7, b"123456")]
    );
    assert_eq!(t.table.buffered_bytes(), 5);
}

#[test]
fn mid_connection_start_uses_port_heuristic() {
    let mut t = T::new();
    // First segment is the server's response: no handshake seen.
    t.feed(1, &seg(s(), c(), "A", 9000, 777, b"HTTP/1.1 200 OK\r\n"));
    t.feed(2, &seg(c(), s(), "A", 777, 9017, b"GET"));
    // A pure ACK before any data would not have opened anything.
    assert_eq!(t.rec.opens(), vec![(FlowId(0), c(), s(), 777, false)]);
    assert_eq!(t.rec.bytes(FlowId(0), S2C), b"HTTP/1.1 200 OK\r\n");
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"GET");

    // Client first, both ports high: the lower port is the server.
    let a = addr("10.0.0.5:40000");
    let b = addr("10.0.0.6:50000");
    t.feed(3, &seg(b, a, "A", 5, 6, b"x"));
    assert_eq!(t.rec.opens()[1], (FlowId(1), b, a, 5, false));
    // A common server port wins over "below 32768".
    let d = addr("10.0.0.7:443");
    let e = addr("10.0.0.8:5432");
    t.feed(4, &seg(d, e, "", 5, 0, b"x"));
    assert_eq!(t.rec.opens()[2], (FlowId(2), e, d, 0, false));
}

#[test]
fn pure_ack_fin_rst_do_not_open_flows() {
    let mut t = T::new();
    t.feed(1, &seg(c(), s(), "A", 1, 1, b""));
    t.feed(2, &seg(c(), s(), "AF", 1, 1, b""));
    t.feed(3, &seg(c(), s(), "R", 1, 1, b""));
    t.feed(4, &seg(c(), s(), "RA", 1, 1, b"boom"));
    assert!(t.rec.0.is_empty());
    assert_eq!(t.stats.tcp_segments_without_flow, 4);
}

#[test]
fn rst_delivers_buffered_with_gaps_then_closes() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 1, 1, b"ab"));
    t.feed(11, &seg(c(), s(), "A", 5, 1, b"ef"));
    t.feed(12, &seg(s(), c(), "A", 4, 3, b"xyz")); // server stream with a hole of 3
    t.feed(13, &seg(s(), c(), "R", 7, 0, b""));
    assert_eq!(
        t.rec.0[2..],
        [
            gap(0, C2S, 13, 2),
            data(0, C2S, 13, b"ef"),
            gap(0, S2C, 13, 3),
            data(0, S2C, 13, b"xyz"),
            closed(0, 13, CloseReason::Rst),
        ]
    );
    assert!(t.table.is_empty());
    assert_eq!(t.table.buffered_bytes(), 0);
    assert_eq!(t.stats.flows_closed, 1);
}

#[test]
fn fin_waits_for_both_sides_and_declares_missing_bytes_before_fin() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "AF", 1, 1, b"req"));
    assert_eq!(t.table.len(), 1);
    // Server sends 5 bytes then FIN at offset 9: bytes 5..9 never captured.
    t.feed(11, &seg(s(), c(), "A", 1, 5, b"resp1"));
    t.feed(12, &seg(s(), c(), "AF", 10, 5, b""));
    assert_eq!(
        t.rec.0[1..],
        [
            data(0, C2S, 10, b"req"),
            data(0, S2C, 11, b"resp1"),
            gap(0, S2C, 12, 4),
            closed(0, 12, CloseReason::Fin),
        ]
    );
    assert!(t.table.is_empty());
}

#[test]
fn data_after_fin_reordered_before_it_is_delivered() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "AF", 4, 1, b"def")); // FIN segment first
    t.feed(11, &seg(c(), s(), "A", 1, 1, b"abc"));
    t.feed(12, &seg(s(), c(), "AF", 1, 8, b""));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"abcdef");
    assert_eq!(t.rec.closes(), vec![(FlowId(0), CloseReason::Fin)]);
    assert_eq!(t.stats.tcp_gaps, 0);
}

#[test]
fn idle_timeout_closes_and_flushes() {
    let mut t = T::with(TcpConfig {
        idle_timeout_ns: 100,
        ..TcpConfig::default()
    });
    handshake(&mut t, 0, 0);
    t.feed(10, &seg(c(), s(), "A", 3, 1, b"zz")); // hole of 2
    let other = addr("10.0.0.9:40000");
    t.feed(50, &seg(other, s(), "S", 0, 0, b""));
    t.expire(110);
    assert!(t.rec.closes().is_empty(), "idle exactly 100 is not expired");
    t.expire(111);
    assert_eq!(
        t.rec.0[t.rec.0.len() - 3..],
        [
            gap(0, C2S, 111, 2),
            data(0, C2S, 111, b"zz"),
            closed(0, 111, CloseReason::IdleTimeout)
        ]
    );
    assert_eq!(t.table.len(), 1);
    // Activity keeps a flow alive even when far apart from its last LRU re-key.
    for ts in (60..3_000_000_000u64).step_by(50_000_000) {
        t.feed(ts, &seg(other, s(), "A", 1, 0, b""));
        t.expire(ts);
    }
    assert_eq!(t.table.len(), 1);
    t.expire(3_000_000_000 + 1_000);
    assert!(t.table.is_empty());
    assert_eq!(t.stats.flows_idle_timeout, 2);
}

#[test]
fn eviction_at_max_flows_picks_least_recently_active() {
    let mut t = T::with(TcpConfig {
        max_flows: 2,
        ..TcpConfig::default()
    });
    let a = addr("10.0.0.1:40001");
    let b = addr("10.0.0.1:40002");
    let d = addr("10.0.0.1:40003");
    t.feed(1, &seg(a, s(), "S", 0, 0, b""));
    t.feed(2, &seg(b, s(), "S", 0, 0, b""));
    t.feed(3, &seg(a, s(), "A", 1, 0, b"x")); // a is now more recent than b
    t.feed(4, &seg(d, s(), "S", 0, 0, b""));
    assert_eq!(t.rec.closes(), vec![(FlowId(1), CloseReason::Evicted)]);
    assert_eq!(t.table.len(), 2);
    assert_eq!(t.stats.flows_evicted, 1);
    // Evicted flow's closing comes before the new flow's Opened.
    let n = t.rec.0.len();
    assert!(matches!(t.rec.0[n - 2], Ev::Closed { .. }));
    assert!(matches!(
        t.rec.0[n - 1],
        Ev::Opened {
            flow: FlowId(2),
            ..
        }
    ));
}

#[test]
fn finish_flushes_and_closes_in_flow_id_order() {
    let mut t = T::new();
    let a = addr("10.0.0.1:40001");
    let b = addr("10.0.0.1:40002");
    t.feed(1, &seg(a, s(), "S", 0, 0, b""));
    t.feed(2, &seg(b, s(), "S", 0, 0, b""));
    t.feed(3, &seg(b, s(), "A", 3, 0, b"cd"));
    t.feed(4, &seg(a, s(), "A", 1, 0, b"ab"));
    t.finish(9);
    assert_eq!(
        t.rec.0[2..],
        [
            data(0, C2S, 4, b"ab"),
            closed(0, 9, CloseReason::EndOfInput),
            gap(1, C2S, 9, 2),
            data(1, C2S, 9, b"cd"),
            closed(1, 9, CloseReason::EndOfInput),
        ]
    );
    assert!(t.table.is_empty());
    assert_eq!(t.table.buffered_bytes(), 0);
    assert_eq!(t.stats.flows_end_of_input, 2);
}

#[test]
fn new_syn_after_fin_starts_new_flow_retransmitted_syn_does_not() {
    let mut t = T::new();
    t.feed(1, &seg(c(), s(), "S", 100, 0, b""));
    t.feed(2, &seg(c(), s(), "S", 100, 0, b"")); // retransmitted SYN
    assert_eq!(t.rec.opens().len(), 1);
    t.feed(3, &seg(s(), c(), "SA", 0, 101, b""));
    t.feed(4, &seg(c(), s(), "AF", 101, 1, b"bye")); // half-close
    t.feed(5, &seg(c(), s(), "S", 9999, 0, b"")); // port reuse
    assert_eq!(t.rec.closes(), vec![(FlowId(0), CloseReason::Fin)]);
    assert_eq!(t.rec.opens().len(), 2);
    assert_eq!(t.rec.opens()[1], (FlowId(1), c(), s(), 9999, true));
    // New SYN with a different ISN on a connection that saw no FIN.
    t.feed(6, &seg(c(), s(), "S", 5, 0, b""));
    assert_eq!(
        t.rec.closes(),
        vec![(FlowId(0), CloseReason::Fin), (FlowId(1), CloseReason::Rst)]
    );
    assert_eq!(t.table.len(), 1);
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"bye");
}

#[test]
fn syn_retransmission_with_data_and_timestamps_going_backwards() {
    let mut t = T::new();
    t.feed(10, &seg(c(), s(), "S", 0, 0, b""));
    t.feed(5, &seg(c(), s(), "A", 1, 0, b"a"));
    t.feed(7, &seg(c(), s(), "A", 2, 0, b"b"));
    assert_eq!(t.rec.bytes(FlowId(0), C2S), b"ab");
}

#[test]
fn ipv6_endpoints_work() {
    let mut t = T::new();
    let a = addr("[2001:db8::1]:40000");
    let b = addr("[2001:db8::2]:443");
    t.feed(1, &seg(a, b, "A", 1, 1, b"hi"));
    t.feed(2, &seg(b, a, "A", 1, 3, b"yo"));
    assert_eq!(t.rec.opens(), vec![(FlowId(0), a, b, 1, false)]);
    assert_eq!(t.rec.bytes(FlowId(0), S2C), b"yo");
}

#[test]
fn many_tiny_out_of_order_runs_are_bounded() {
    let mut t = T::new();
    handshake(&mut t, 0, 0);
    // 2000 one-byte runs separated by one-byte holes.
    for i in 0..2000u32 {
        t.feed(10 + u64::from(i), &seg(c(), s(), "A", 3 + 2 * i, 1, b"x"));
    }
    assert!(t.table.buffered_bytes() <= mcptap_wire::tcp::MAX_SEGMENTS_PER_DIR);
    assert!(t.stats.tcp_gaps > 0);
}
